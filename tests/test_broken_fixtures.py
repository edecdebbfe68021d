"""Every contract can fail: each broken fixture makes exactly its own contract fail.

The guarantee is shown on the whole catalog for every fixture, in one run of the kit that
checks all of them side by side (one report each): a single pytest session pays for its
start, its workers and their harnesses once, and keeps both cores busy. It runs the
``sweep`` profile: each contract's explicit examples and a few generated ones, enough to
catch every fixture, as this test shows.
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
WORKERS = "12"
# Bounds the one run of the whole catalog on every fixture.
ALL_FIXTURES_TIMEOUT = 3600


def _breaks(path: Path) -> str | None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = BREAKS_PREFIX.match(docstring)
    return match.group(1) if match else None


# fixture file -> the one contract it breaks, from its docstring ("Breaks <id>:")
BREAKS = {path.name: _breaks(path) for path in sorted(BROKEN.glob("[!_]*.py"))}


def test_every_contract_has_a_broken_fixture() -> None:
    missing = {c.id for c in catalog()} - set(BREAKS.values())
    assert not missing, f"contracts without a broken fixture: {sorted(missing)}"


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_fixture_docstring_names_a_known_contract(fixture: str) -> None:
    assert BREAKS[fixture] in {c.id for c in catalog()}, (
        f"{fixture}'s docstring must start with 'Breaks <contract id>:'")


def test_each_fixture_fails_exactly_its_own_contract(tmp_path: Path) -> None:
    # One test, so that the one run happens in one process even under xdist; its message
    # names every fixture that does not fail exactly its own contract, and how.
    impls = [arg for fixture in sorted(BREAKS) for arg in ("--impl", str(BROKEN / fixture))]
    run = kit(tmp_path, *impls, "--strict", profile="sweep", workers=WORKERS,
              timeout=ALL_FIXTURES_TIMEOUT)
    assert run.code == 1, run.stdout[-5000:] + run.stderr
    problems = [f"{fixture}: {problem}" for fixture in sorted(BREAKS)
                if (problem := _not_exactly_its_own(run, fixture))]
    assert not problems, "\n".join(problems)


def _not_exactly_its_own(run: KitRun, fixture: str) -> str | None:
    """What is wrong with this fixture's results, or None: it must fail its own contract,
    with a message and a reproduce command, and pass every other."""
    target = fixture.removesuffix(".py")
    outcomes = run.outcomes(target)
    if set(outcomes) != {c.id for c in catalog()}:
        return f"not every contract has a result: {sorted(outcomes)}"
    wrong = {cid: outcome for cid, outcome in outcomes.items()
             if outcome != ("failed" if cid == BREAKS[fixture] else "passed")}
    contracts = {c["id"]: c for c in run.results(target)["contracts"]}
    if wrong:
        # The messages of the cases that went wrong: enough to tell a load-dependent
        # wait from a real overlap without the run's reports, which are gone by then.
        messages = [f"  {case['nodeid']}: {case['outcome']}: {case['message']}"
                    for cid in wrong for case in contracts[cid]["cases"]
                    if case["outcome"] not in ("passed", "skipped")]
        return "\n".join([f"breaks {BREAKS[fixture]}, but: {wrong}", *messages])
    contract = contracts[BREAKS[fixture]]
    if not contract["message"] or not contract["reproduce"].startswith(
            "python -m conformance --impl "):
        return f"its failure has no message or reproduce command: {contract}"
    return None
