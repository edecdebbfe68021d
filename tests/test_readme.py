"""The README's contract table is the catalog, not a hand-written copy of it."""

from __future__ import annotations

from conformance.contracts.catalog import catalog
from conformance.reporting.catalog_table import markdown_table
from tests.conftest import REPO

START = "<!-- catalog:start -->\n"
END = "<!-- catalog:end -->"


def test_readme_catalog_matches_the_contract_metadata() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = readme[readme.index(START) + len(START):readme.index(END)]
    assert shown == markdown_table(catalog()), (
        "README.md is out of date: paste `python -m conformance --list-contracts` "
        "between the catalog markers")
