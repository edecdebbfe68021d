"""Every contract can fail: each broken fixture makes exactly its own contract fail."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conformance.contracts.catalog import catalog
from tests.conftest import BROKEN

BREAKS_PREFIX = re.compile(r"^Breaks ([a-z0-9_.]+):")


def _breaks(path: Path) -> str | None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = BREAKS_PREFIX.match(docstring)
    return match.group(1) if match else None


# fixture file -> the one contract it breaks, from its docstring ("Breaks <id>: ...")
BREAKS = {path.name: _breaks(path) for path in sorted(BROKEN.glob("[!_]*.py"))}


def test_every_contract_has_a_broken_fixture() -> None:
    missing = {c.id for c in catalog()} - set(BREAKS.values())
    assert not missing, f"contracts without a broken fixture: {sorted(missing)}"


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_fixture_docstring_names_a_known_contract(fixture: str) -> None:
    assert BREAKS[fixture] in {c.id for c in catalog()}, (
        f"{fixture}'s docstring must start with 'Breaks <contract id>:'")


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_exactly_that_contract_fails(run_kit, fixture: str) -> None:
    # --strict: a should-level contract's failure must fail the run too.
    run = run_kit("--impl", str(BROKEN / fixture), "--strict", whole_catalog=True)
    assert run.code == 1, run.stdout + run.stderr
    outcomes = run.outcomes(fixture.removesuffix(".py"))
    failed = {cid for cid, outcome in outcomes.items() if outcome != "passed"}
    assert failed == {BREAKS[fixture]}, outcomes
    contract = next(c for c in run.results(fixture.removesuffix(".py"))["contracts"]
                    if c["id"] == BREAKS[fixture])
    assert contract["outcome"] == "failed"
    assert contract["message"]
    assert contract["reproduce"].startswith("python -m conformance --impl ")
