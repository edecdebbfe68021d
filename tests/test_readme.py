"""The README's generated tables are the catalog and the baselines, not hand-written copies."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def _update_readme_module():
    spec = importlib.util.spec_from_file_location("update_readme",
                                                  REPO / "tools" / "update_readme.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_generated_sections_are_current() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert _update_readme_module().render(readme) == readme, (
        "README.md is out of date: run `python tools/update_readme.py`")
