"""Every contract can fail: each broken fixture makes exactly its own contract fail.

The guarantee is shown on the whole catalog for every fixture, in one run of the kit that
checks all of them side by side (one report each): a single pytest session pays for its
start, its workers and their harnesses once, and keeps both cores busy.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conformance.contracts.catalog import catalog
from tests.conftest import BROKEN, KitRun, kit

BREAKS_PREFIX = re.compile(r"^Breaks ([a-z0-9_.]+):")
# The whole catalog on every fixture: contract tests mostly wait on sockets and timers,
# so more workers than cores keep the cores busy.
WORKERS = "6"
# Bounds the one run of the whole catalog on every fixture.
ALL_FIXTURES_TIMEOUT = 3600


def _breaks(path: Path) -> str | None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = BREAKS_PREFIX.match(docstring)
    return match.group(1) if match else None


# fixture file -> the one contract it breaks, from its docstring ("Breaks <id>:")
BREAKS = {path.name: _breaks(path) for path in sorted(BROKEN.glob("[!_]*.py"))}
# The tests that read the one run stay in one process (tox runs the self-tests with
# --dist loadgroup), so that it runs once.
pytestmark = pytest.mark.xdist_group("all-broken-fixtures")


@pytest.fixture(scope="module")
def all_fixtures(tmp_path_factory: pytest.TempPathFactory) -> KitRun:
    """One run of the whole catalog on every broken fixture; --strict, so that a
    should-level contract's failure fails the run too."""
    impls = [arg for fixture in sorted(BREAKS) for arg in ("--impl", str(BROKEN / fixture))]
    return kit(tmp_path_factory.mktemp("broken"), *impls, "--strict", workers=WORKERS,
               timeout=ALL_FIXTURES_TIMEOUT)


def test_every_contract_has_a_broken_fixture() -> None:
    missing = {c.id for c in catalog()} - set(BREAKS.values())
    assert not missing, f"contracts without a broken fixture: {sorted(missing)}"


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_fixture_docstring_names_a_known_contract(fixture: str) -> None:
    assert BREAKS[fixture] in {c.id for c in catalog()}, (
        f"{fixture}'s docstring must start with 'Breaks <contract id>:'")


def test_the_run_on_every_fixture_fails(all_fixtures: KitRun) -> None:
    assert all_fixtures.code == 1, all_fixtures.stdout[-5000:] + all_fixtures.stderr


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_exactly_that_contract_fails(all_fixtures: KitRun, fixture: str) -> None:
    target = fixture.removesuffix(".py")
    outcomes = all_fixtures.outcomes(target)
    assert set(outcomes) == {c.id for c in catalog()}, outcomes
    failed = {cid for cid, outcome in outcomes.items() if outcome != "passed"}
    assert failed == {BREAKS[fixture]}, outcomes
    contract = next(c for c in all_fixtures.results(target)["contracts"]
                    if c["id"] == BREAKS[fixture])
    assert contract["outcome"] == "failed"
    assert contract["message"]
    assert contract["reproduce"].startswith("python -m conformance --impl ")
