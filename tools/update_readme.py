"""Rewrite the README's generated sections: the contract catalog and the targets' baselines.

Run ``python tools/update_readme.py`` after adding a contract or changing a baseline; the
self-tests fail while the README is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance.contracts.catalog import catalog
from conformance.presets import presets
from conformance.reporting.catalog_table import baselines_table, markdown_table

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"


def sections() -> dict[str, str]:
    """Each generated section's name and its current content."""
    return {
        "catalog": markdown_table(catalog()),
        "baselines": baselines_table(list(presets().values()),
                                     str(REPO / "conformance" / "baselines")),
    }


def render(readme: str) -> str:
    """``readme`` with every generated section replaced by its current content."""
    for name, content in sections().items():
        start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
        before, rest = readme.split(start, 1)
        _, after = rest.split(end, 1)
        readme = before + start + content + end + after
    return readme


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
