"""Mutation score of the kit, measured next to CPython's own test_socketserver.

Mutants are made from this interpreter's standard-library ``socketserver.py`` (copied into
a temporary folder) with cosmic-ray's mutation operators: one operator applied at one
place, written out as a standalone module. cosmic-ray rather than mutmut because
``cosmic_ray.mutating.mutate_code(code, operator, occurrence)`` returns exactly that, a
plain module the kit can load with ``--impl FILE``; mutmut 3 writes every mutant of a
function into one trampolined file that imports mutmut at run time and picks the active
mutant from an environment variable, which is not an implementation the harness can load.

Every competent mutant (one that imports) is put through both suites:

- the kit, ``python -m conformance --impl MUTANT.py --hypothesis-profile quick``, which
  kills the mutant when it exits 1. By default it runs only the contracts that can observe
  the mutant (coverage-guided selection, module ``mutation_selection``): the unmutated
  copy's whole-catalog run is measured with ``--coverage``, which says which contracts
  executed each line, and the kit runs on a mutant with ``--contract ID`` for each contract
  that executed a line the mutant changes. When one of those lines ran at import (a
  ``def`` or ``class`` line, a default argument, a class attribute), the whole catalog runs;
  when no contract executed any of them, the mutant survives the kit without a run
  ("no contract executes line N"). ``--unguided`` runs the whole catalog on every mutant.
  The kit runs with pytest's ``-x``: it stops at the first
  failing contract, which changes how long a killed mutant takes but not whether the kit
  exits 1 (``--all-contracts`` runs every contract, to see each one a mutant breaks).
  Under xdist (``--kit-workers``) a run stopped by ``-x`` exits 2, "interrupted"; it
  kills too when its results.json records the failing contract;
- CPython's ``test.test_socketserver``, run by ``unittest`` after the mutant has been
  loaded into ``sys.modules["socketserver"]``, which kills it when any test fails or errs.

A suite still running after its per-mutant timeout (by default a few times what it took
on the unmutated copy) is stopped and the mutant counts as killed (outcome ``timeout``,
reported apart). For the kit that is its whole-catalog run on the copy, measured with
``--coverage`` (which slows it) unless ``--unguided``, whatever the mutant's selection: a
selection only makes a run shorter, so a timeout that fits the whole catalog fits it too.
Mutants run at most two at a time; the run stops starting mutants at the overall deadline
and reports the rest as not run. The unmutated copy goes through both suites first, so a
broken setup is not read as a score.

Writes ``mutation.json`` (with each mutant's selection), ``survivors.md`` and each mutant's
suite output (``logs/``) to the report folder (``reports/mutation``).
Every mutant that survives either suite is listed in ``survivors.md`` with a judgement
column, filled in from ``tools/mutation_survivors.md`` (the reviewed copy) where the same
mutant has been judged before: ``equivalent`` (and why) or ``gap``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from mutation_selection import (
    SELECTED,
    UNREACHED,
    WHOLE_CATALOG,
    BaselineCoverageError,
    LineContracts,
    Selection,
    changed_line_numbers,
    read_line_contracts,
    select,
)

ROOT = Path(__file__).resolve().parent.parent
JUDGEMENTS = ROOT / "tools" / "mutation_survivors.md"
MUTANT_FILE = "socketserver_mutant.py"
# Every process a suite starts inherits this variable, so that whatever a stopped suite
# left behind (a harness, a forked server child) can be found and ended by its pid.
TAG_VARIABLE = "SOCKETSERVER_MUTATION_RUN"
# ExceptionReplacer writes this name into except clauses; cosmic-ray defines it in its
# own package, so each mutant that uses it gets its own definition appended, marked as
# cosmic-ray's so that test_socketserver's __all__ check does not count it as public.
REPLACEMENT_EXCEPTION = "CosmicRayTestingException"
# How long a suite interrupted with SIGINT gets to clean up before it is killed.
INTERRUPT_GRACE = 10.0
IMPORT_TIMEOUT = 30.0
# A suite's default per-mutant timeout: this many times its run on the unmutated copy, and
# at least its floor.
TIMEOUT_FACTOR = 3.0
TIMEOUT_FLOORS = {"kit": 120.0, "cpython": 60.0}
# Until the unmutated copy has set the timeouts.
BASELINE_TIMEOUT = 900.0
MAX_JOBS = 2
# pytest's "interrupted" status, which is what xdist returns when -x stops the run.
XDIST_STOPPED = 2
KILLED, SURVIVED, TIMEOUT, ERROR, NOT_RUN = "killed", "survived", "timeout", "error", "not run"
SURVIVOR_COLUMNS = ("mutant", "line", "original", "mutated", "kit", "kit ran",
                    "CPython suite", "judgement")
# A reviewed table written before the "kit ran" column still has its judgements read.
UNGUIDED_COLUMNS = len(SURVIVOR_COLUMNS) - 1
BASELINE = "baseline"

_IMPORT_CHECK = """\
import importlib.util, sys
spec = importlib.util.spec_from_file_location("socketserver", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["socketserver"] = module
spec.loader.exec_module(module)
"""
_CPYTHON_SUITE = _IMPORT_CHECK + """\
import unittest
program = unittest.main(module="test.test_socketserver", argv=["test_socketserver"],
                        exit=False)
sys.exit(0 if program.result.wasSuccessful() else 1)
"""


@dataclass(frozen=True)
class Mutation:
    """One cosmic-ray operator applied at one of the places it can apply."""

    operator: str
    occurrence: int
    line: int

    @property
    def id(self) -> str:
        return f"{self.operator.removeprefix('core/')}#{self.occurrence}"


@dataclass
class Verdict:
    """What one suite made of one mutant."""

    outcome: str
    seconds: float = 0.0
    detail: str = ""

    @property
    def killed(self) -> bool:
        return self.outcome in (KILLED, TIMEOUT)


@dataclass
class MutantResult:
    """A mutant, the lines it changed, the contracts the kit ran on it, and the verdict of
    each suite."""

    mutation: Mutation
    original: str
    mutated: str
    competent: bool = True
    import_error: str = ""
    selection: Selection = field(default_factory=lambda: Selection(WHOLE_CATALOG))
    kit: Verdict = field(default_factory=lambda: Verdict(NOT_RUN))
    cpython: Verdict = field(default_factory=lambda: Verdict(NOT_RUN))


class Budget:
    """The overall deadline of a run."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())


@dataclass(frozen=True)
class Settings:
    """What every mutant's run needs: where to work, which profile, how long."""

    workdir: Path
    profile: str
    timeouts: dict[str, float]
    cpython_suite: bool
    budget: Budget
    tag: str
    all_contracts: bool
    logs: Path
    kit_workers: int
    strict: bool
    guided: bool
    # Which contracts executed each line of the unmutated copy, once its run has said.
    line_contracts: LineContracts | None = None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Mutation score of the kit against cosmic-ray mutants of this "
                    "interpreter's socketserver.py, next to CPython's test_socketserver. "
                    "The kit runs on each mutant the contracts that executed the lines it "
                    "changes on the unmutated copy (coverage-guided; see --unguided).")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="run a random sample of N mutants (default: all of them)")
    parser.add_argument("--seed", type=int, default=1,
                        help="the sample's random seed (default: 1)")
    parser.add_argument("--jobs", type=int, default=MAX_JOBS, choices=range(1, MAX_JOBS + 1),
                        help=f"mutants run at once (default and at most: {MAX_JOBS})")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="per-mutant timeout of each suite (default: "
                             f"{TIMEOUT_FACTOR:g} x its run on the unmutated copy, at least "
                             f"{TIMEOUT_FLOORS['kit']:g}s for the kit and "
                             f"{TIMEOUT_FLOORS['cpython']:g}s for CPython's suite; for the "
                             "kit, its whole-catalog run, whatever a mutant's selection)")
    parser.add_argument("--deadline", type=float, default=3000.0, metavar="SECONDS",
                        help="start no mutant after this long (default: 3000)")
    parser.add_argument("--profile", default="quick",
                        help="the kit's Hypothesis profile (default: quick)")
    parser.add_argument("--kit-workers", type=int, default=1, metavar="N",
                        help="xdist workers per kit run (default: 1). The kit mostly waits "
                             "on its bounded network exchanges, so 2 shortens a run without "
                             "costing much CPU")
    parser.add_argument("--strict", action="store_true",
                        help="run the kit with --strict, so that should-level contracts "
                             "(stdlib behaviour the documentation does not state) kill too")
    parser.add_argument("--only", action="append", default=[], metavar="ID",
                        help="run only this mutant, e.g. AddNot#8 (repeatable)")
    parser.add_argument("--all-contracts", action="store_true",
                        help="run every selected contract on each mutant instead of stopping "
                             "at the first failure (slower; the same verdicts)")
    parser.add_argument("--unguided", action="store_true",
                        help="run the kit's whole catalog on every mutant. By default the "
                             "unmutated copy's run is measured with --coverage and the kit "
                             "runs on a mutant only the contracts that executed a line it "
                             "changes: the whole catalog when such a line ran at import, and "
                             "none when no contract executed one (the mutant survives the "
                             "kit, 'no contract executes line N')")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "reports" / "mutation",
                        help="where mutation.json and survivors.md go")
    return parser


def stdlib_socketserver() -> Path:
    """The socketserver.py of the interpreter running this script (a venv's base one)."""
    return Path(sysconfig.get_paths()["stdlib"]) / "socketserver.py"


def cpython_suite_available() -> bool:
    """Whether this interpreter ships CPython's test_socketserver (some distributions
    leave the test package out)."""
    import importlib.util

    try:
        return importlib.util.find_spec("test.test_socketserver") is not None
    except ImportError:
        return False


def _operators() -> list[tuple[str, Any]]:
    """Every cosmic-ray operator that needs no arguments, instantiated."""
    import cosmic_ray.plugins

    found = []
    for name in cosmic_ray.plugins.operator_names():
        operator_class = cosmic_ray.plugins.get_operator(name)
        if not operator_class.arguments():
            found.append((name, operator_class()))
    return found


def enumerate_mutations(source: str) -> list[Mutation]:
    """Every (operator, occurrence) cosmic-ray can apply to ``source``, with its line."""
    from cosmic_ray.ast import ast_nodes, get_ast

    tree = get_ast(source)
    mutations = []
    for name, operator in _operators():
        positions = (start for node in ast_nodes(tree)
                     for start, _ in operator.mutation_positions(node))
        mutations += [Mutation(name, occurrence, start[0])
                      for occurrence, start in enumerate(positions)]
    return mutations


def mutate(source: str, mutation: Mutation) -> str:
    """The source with cosmic-ray's mutation applied, as cosmic-ray writes it."""
    import cosmic_ray.mutating
    import cosmic_ray.plugins

    operator = cosmic_ray.plugins.get_operator(mutation.operator)()
    code = cosmic_ray.mutating.mutate_code(source, operator, mutation.occurrence)
    if code is None:
        raise ValueError(f"cosmic-ray could not apply {mutation.id}")
    return code


def standalone(code: str, source: str) -> str:
    """The mutated code as a module that runs without cosmic-ray installed."""
    if REPLACEMENT_EXCEPTION in code and REPLACEMENT_EXCEPTION not in source:
        code += (f"\n\n{REPLACEMENT_EXCEPTION} = type({REPLACEMENT_EXCEPTION!r}, (Exception,), "
                 "{'__module__': 'cosmic_ray.exceptions'})\n")
    return code


def changed_lines(source: str, code: str) -> tuple[str, str]:
    """The lines the mutation changed, before and after, each stripped and joined."""
    before, after = source.splitlines(), code.splitlines()
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end_before, end_after = len(before), len(after)
    while (end_before > start and end_after > start
           and before[end_before - 1] == after[end_after - 1]):
        end_before, end_after = end_before - 1, end_after - 1
    return (_shorten(" / ".join(line.strip() for line in before[start:end_before])),
            _shorten(" / ".join(line.strip() for line in after[start:end_after])))


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def choose(mutations: list[Mutation], sample: int | None, seed: int) -> list[Mutation]:
    """A fixed-seed random sample of ``sample`` mutations (all of them when None), in a
    random order: a run cut short by the deadline has still judged a uniform sample."""
    count = len(mutations) if sample is None else min(sample, len(mutations))
    return random.Random(seed).sample(mutations, count)


def reap(tag: str) -> int:
    """Kill, by pid, every process still carrying ``tag`` in its environment."""
    marker = f"{TAG_VARIABLE}={tag}".encode()
    killed = 0
    for _ in range(3):
        found = [pid for pid in _pids() if marker in _environment(pid)]
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        killed += len(found)
        if not found:
            break
        time.sleep(0.2)
    return killed


def _pids() -> list[int]:
    if not os.path.isdir("/proc"):
        return []
    return [int(name) for name in os.listdir("/proc")
            if name.isdigit() and int(name) != os.getpid()]


def _environment(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return environ.read().split(b"\0")
    except OSError:
        return []


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """SIGINT the process group (pytest then stops its harness), SIGKILL it if it stays."""
    for sig, grace in ((signal.SIGINT, INTERRUPT_GRACE), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(OSError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
            return


def run_bounded(command: list[str], *, cwd: Path, timeout: float, tag: str,
                log: Path) -> tuple[int | None, float]:
    """Run ``command`` with output to ``log``; its exit status (None if it was stopped
    at ``timeout``) and how long it took. Nothing it started outlives it."""
    env = dict(os.environ, **{TAG_VARIABLE: tag})
    started = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            _interrupt(process)
            code = None
    elapsed = time.monotonic() - started
    reap(tag)
    return code, elapsed


def _tail(log: Path, lines: int = 6) -> str:
    text = log.read_text(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:])


def _verdict(code: int | None, elapsed: float, cut_short: bool, detail: str) -> Verdict:
    """Exit status to verdict: 1 kills, 0 survives, anything else is an error. A run
    stopped at its timeout kills, unless the overall deadline had shortened that timeout."""
    if code is None:
        if cut_short:
            return Verdict(NOT_RUN, elapsed, "stopped at the overall deadline")
        return Verdict(TIMEOUT, elapsed, f"still running after {elapsed:.0f}s; {detail}")
    outcome = {0: SURVIVED, 1: KILLED}.get(code, ERROR)
    return Verdict(outcome, elapsed, "" if code == 0 else detail)


def _failed_contracts(report_dir: Path) -> str:
    """The contracts a kit run failed, from its results.json."""
    failed = []
    for results in report_dir.glob("*/results.json"):
        data = json.loads(results.read_text())
        failed += [c["id"] for c in data.get("contracts", [])
                   if c.get("outcome") in ("failed", "error")]
    return ", ".join(sorted(failed))


def _failed_tests(log: Path) -> str:
    """The tests a unittest run failed, from its output."""
    found = re.findall(r"^(?:FAIL|ERROR): (\w+) \(([\w.]+)\)", log.read_text(errors="replace"),
                       flags=re.MULTILINE)
    names = sorted({f"{case.rsplit('.', 1)[-1]}.{test}" for test, case in found})
    return ", ".join(names)


def _timeout(settings: Settings, suite: str) -> tuple[float, bool]:
    """The timeout for the suite's next run, and whether the overall deadline shortened it."""
    remaining, timeout = settings.budget.remaining(), settings.timeouts[suite]
    return max(1.0, min(timeout, remaining)), remaining < timeout


def suite_timeouts(baseline: MutantResult, chosen: float | None) -> dict[str, float]:
    """Each suite's per-mutant timeout: as chosen, or from its unmutated run."""
    return {suite: chosen or max(floor, TIMEOUT_FACTOR * getattr(baseline, suite).seconds)
            for suite, floor in TIMEOUT_FLOORS.items()}


def kit_reports(folder: Path) -> Path:
    """Where the kit run in a mutant's ``folder`` writes its reports."""
    return folder / "reports"


def run_kit(mutant: Path, folder: Path, settings: Settings, selection: Selection, *,
            coverage: bool = False) -> Verdict:
    """The kit against ``mutant``, on the contracts ``selection`` names (with
    ``--coverage`` when ``coverage``): killed when it exits 1, survived without a run when
    no contract executes what the mutant changed."""
    if selection.scope == UNREACHED:
        return Verdict(SURVIVED, 0.0, selection.reason)
    reports = kit_reports(folder)
    command = [sys.executable, "-m", "conformance", "--impl", str(mutant),
               "--hypothesis-profile", settings.profile, "--report-dir", str(reports), "-q",
               *selection.kit_arguments()]
    if coverage:
        command.append("--coverage")
    if not settings.all_contracts:
        command.append("-x")
    if settings.kit_workers > 1:
        command += ["-n", str(settings.kit_workers)]
    if settings.strict:
        command.append("--strict")
    timeout, cut_short = _timeout(settings, "kit")
    code, elapsed = run_bounded(command, cwd=folder, timeout=timeout,
                                tag=f"{settings.tag}-{folder.name}-kit", log=folder / "kit.log")
    failed = _failed_contracts(reports)
    if code == XDIST_STOPPED and failed and "-x" in command and "-n" in command:
        # xdist reports a run that -x stopped after a failing contract as interrupted.
        code = 1
    return _verdict(code, elapsed, cut_short, failed or _tail(folder / "kit.log"))


def run_cpython_suite(mutant: Path, folder: Path, settings: Settings) -> Verdict:
    """CPython's test_socketserver with ``mutant`` as socketserver: killed when it fails."""
    if not settings.cpython_suite:
        return Verdict(NOT_RUN, 0.0, "this interpreter has no test.test_socketserver")
    log = folder / "cpython.log"
    timeout, cut_short = _timeout(settings, "cpython")
    code, elapsed = run_bounded([sys.executable, "-c", _CPYTHON_SUITE, str(mutant)],
                                cwd=folder, timeout=timeout,
                                tag=f"{settings.tag}-{folder.name}-cpython", log=log)
    return _verdict(code, elapsed, cut_short, _failed_tests(log) or _tail(log))


def import_error(mutant: Path, folder: Path, settings: Settings) -> str:
    """Why ``mutant`` does not import as socketserver, or "" when it does."""
    log = folder / "import.log"
    code, _ = run_bounded([sys.executable, "-c", _IMPORT_CHECK, str(mutant)], cwd=folder,
                          timeout=IMPORT_TIMEOUT, tag=f"{settings.tag}-{folder.name}-import",
                          log=log)
    if code == 0:
        return ""
    return _tail(log, 1) or f"import exited with {code}"


def judge(mutation: Mutation | None, source: str, settings: Settings) -> MutantResult:
    """Write the mutant (the unmutated copy when ``mutation`` is None), run both suites on
    it and keep their output under the logs folder."""
    code = source if mutation is None else mutate(source, mutation)
    name = BASELINE if mutation is None else re.sub(r"\W", "_", mutation.id)
    folder = settings.workdir / name
    folder.mkdir()
    mutant = folder / MUTANT_FILE
    mutant.write_text(standalone(code, source))
    original, mutated = changed_lines(source, code)
    result = MutantResult(mutation or Mutation("none", 0, 0), original, mutated)
    if mutation is not None and settings.line_contracts is not None:
        result.selection = select(changed_line_numbers(source, code, mutation.line),
                                  settings.line_contracts)
    if settings.budget.remaining() > 0:
        _run_suites(result, mutant, folder, settings)
    kept = settings.logs / name
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    for log in folder.glob("*.log"):
        shutil.copy(log, kept / log.name)
    return result


def _run_suites(result: MutantResult, mutant: Path, folder: Path, settings: Settings) -> None:
    """Import check, then CPython's suite, then the kit, while the deadline allows. The
    unmutated copy's kit run is measured when the run is guided."""
    result.import_error = import_error(mutant, folder, settings)
    if result.import_error:
        result.competent = False
        return
    result.cpython = run_cpython_suite(mutant, folder, settings)
    if settings.budget.remaining() > 0:
        result.kit = run_kit(mutant, folder, settings, result.selection,
                             coverage=settings.guided and folder.name == BASELINE)


def _describe(verdict: Verdict) -> str:
    return f"{verdict.outcome} ({verdict.seconds:.1f}s)"


def progress_line(done: int, total: int, result: MutantResult) -> str:
    """One line per finished mutant."""
    head = f"[{done}/{total}] {result.mutation.id} line {result.mutation.line}"
    if not result.competent:
        return f"{head}: incompetent ({result.import_error})"
    ran = (f"{len(result.selection.contracts)} contracts" if result.selection.scope == SELECTED
           else result.selection.scope)
    return (f"{head}: kit {_describe(result.kit)} on {ran}, "
            f"CPython suite {_describe(result.cpython)}")


def run_all(mutations: list[Mutation], source: str, settings: Settings,
            jobs: int) -> list[MutantResult]:
    """Judge every mutation, ``jobs`` at a time, printing progress as each finishes."""
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(judge, mutation, source, settings) for mutation in mutations]
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            result = future.result()
            results.append(result)
            print(progress_line(done, len(mutations), result), flush=True)
    return sorted(results, key=lambda r: (r.mutation.line, r.mutation.operator,
                                          r.mutation.occurrence))


def tally(results: list[MutantResult], suite: str) -> dict[str, Any]:
    """Killed, timed out, survived, errored and not run for one suite; the score is the
    share killed (timeouts included) of the competent mutants the suite judged."""
    verdicts = [getattr(r, suite) for r in results if r.competent]
    counts = {outcome: sum(v.outcome == outcome for v in verdicts)
              for outcome in (KILLED, TIMEOUT, SURVIVED, ERROR, NOT_RUN)}
    judged = len(verdicts) - counts[NOT_RUN]
    killed = counts[KILLED] + counts[TIMEOUT]
    counts["judged"] = judged
    counts["score"] = round(killed / judged, 4) if judged else None
    return counts


def overlap(results: list[MutantResult]) -> dict[str, int]:
    """How the two suites' kills overlap, over mutants both judged."""
    both_judged = [r for r in results if r.competent
                   and NOT_RUN not in (r.kit.outcome, r.cpython.outcome)]
    return {
        "both": sum(r.kit.killed and r.cpython.killed for r in both_judged),
        "kit_only": sum(r.kit.killed and not r.cpython.killed for r in both_judged),
        "cpython_only": sum(r.cpython.killed and not r.kit.killed for r in both_judged),
        "neither": sum(not r.kit.killed and not r.cpython.killed for r in both_judged),
    }


def selections(results: list[MutantResult]) -> dict[str, int]:
    """How many competent mutants the kit judged on a selection of contracts, on the whole
    catalog, and without a run."""
    judged = [r.selection.scope for r in results if r.competent and r.kit.outcome != NOT_RUN]
    return {scope: judged.count(scope) for scope in (SELECTED, WHOLE_CATALOG, UNREACHED)}


def summary_lines(results: list[MutantResult], total: int, profile: str) -> list[str]:
    """The terminal summary: mutants, and each suite's verdicts and score."""
    incompetent = sum(not r.competent for r in results)
    lines = [f"mutants: {total} generated, {len(results)} chosen, {incompetent} incompetent "
             "(do not import; not scored)",
             f"{'suite':<26}{'killed':>8}{'timeout':>9}{'survived':>10}{'error':>7}"
             f"{'not run':>9}{'score':>8}"]
    for label, suite in ((f"kit ({profile})", "kit"), ("CPython test_socketserver", "cpython")):
        counts = tally(results, suite)
        score = "-" if counts["score"] is None else f"{100 * counts['score']:.1f}%"
        lines.append(f"{label:<26}{counts[KILLED]:>8}{counts[TIMEOUT]:>9}"
                     f"{counts[SURVIVED]:>10}{counts[ERROR]:>7}{counts[NOT_RUN]:>9}{score:>8}")
    scopes = selections(results)
    lines.append(f"the kit ran a selection of contracts on {scopes[SELECTED]} mutants, the "
                 f"whole catalog on {scopes[WHOLE_CATALOG]}, nothing on {scopes[UNREACHED]} "
                 "(no contract executes what they change: survived)")
    shared = overlap(results)
    lines.append(f"killed by both {shared['both']}, kit only {shared['kit_only']}, "
                 f"CPython suite only {shared['cpython_only']}, neither {shared['neither']}")
    lines.append("timeouts count as killed: the mutant kept the suite running past its "
                 "per-mutant timeout")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _split_row(row: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [cell.strip().replace("\\|", "|") for cell in cells]


def read_judgements(path: Path) -> dict[tuple[str, str], str]:
    """Judgements from a reviewed survivors table, keyed by (mutant id, mutated code)."""
    judgements: dict[tuple[str, str], str] = {}
    if not path.is_file():
        return judgements
    for row in path.read_text().splitlines():
        cells = _split_row(row) if row.startswith("| `") else []
        if len(cells) in (len(SURVIVOR_COLUMNS), UNGUIDED_COLUMNS) and cells[-1]:
            judgements[(cells[0].strip("`"), cells[3].strip("`"))] = cells[-1]
    return judgements


def survivors_table(results: list[MutantResult],
                    judgements: dict[tuple[str, str], str]) -> list[str]:
    """Every competent mutant that survived the kit or the CPython suite, as Markdown."""
    rows = ["| " + " | ".join(SURVIVOR_COLUMNS) + " |",
            "|" + " --- |" * len(SURVIVOR_COLUMNS)]
    for result in results:
        if not result.competent or not any(verdict.outcome in (SURVIVED, ERROR)
                                           for verdict in (result.kit, result.cpython)):
            continue
        mutation = result.mutation
        judgement = judgements.get((mutation.id, result.mutated), "")
        cells = [f"`{mutation.id}`", str(mutation.line), f"`{result.original}`",
                 f"`{result.mutated}`", result.kit.outcome, result.selection.describe(),
                 result.cpython.outcome, judgement]
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return rows


def write_reports(folder: Path, header: dict[str, Any], results: list[MutantResult],
                  summary: list[str]) -> None:
    """mutation.json (everything) and survivors.md (the table to judge)."""
    folder.mkdir(parents=True, exist_ok=True)
    report = dict(header, summary={"kit": tally(results, "kit"),
                                   "cpython": tally(results, "cpython"),
                                   "overlap": overlap(results),
                                   "kit_selection": selections(results)},
                  mutants=[_result_json(r) for r in results])
    (folder / "mutation.json").write_text(json.dumps(report, indent=2) + "\n")
    table = survivors_table(results, read_judgements(JUDGEMENTS))
    text = ["# Surviving mutants", "",
            f"socketserver.py of Python {header['python']}, cosmic-ray "
            f"{header['cosmic_ray']}, sample of {header['sample']} (seed {header['seed']}), "
            f"kit profile `{header['profile']}`, "
            f"{'coverage-guided' if header['guided'] else 'whole catalog on every mutant'}, "
            "per-mutant timeouts "
            f"{header['timeouts']['kit']:g}s (kit) and {header['timeouts']['cpython']:g}s "
            "(CPython suite).",
            "", "```", *summary, "```", "", *table, ""]
    (folder / "survivors.md").write_text("\n".join(text))


def _result_json(result: MutantResult) -> dict[str, Any]:
    data = asdict(result)
    data["mutation"]["id"] = result.mutation.id
    return data


def baseline_problem(result: MutantResult, settings: Settings) -> str:
    """Why the unmutated copy does not pass both suites, or "" when it does."""
    if not result.competent:
        return f"it does not import: {result.import_error}"
    problems = [f"{label}: {verdict.outcome}: {verdict.detail}"
                for label, verdict, expected in (
                    ("the kit", result.kit, True),
                    ("CPython's suite", result.cpython, settings.cpython_suite))
                if expected and verdict.outcome != SURVIVED]
    return "; ".join(problems)


def _header(options: argparse.Namespace, source_path: Path, generated: int,
            sample: int, settings: Settings, baseline: MutantResult) -> dict[str, Any]:
    """What mutation.json says about the run itself."""
    return {"schema": "socketserver-conformance/mutation", "version": 1,
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": sys.version.split()[0], "socketserver": str(source_path),
            "cosmic_ray": metadata.version("cosmic-ray"), "generated_mutants": generated,
            "sample": sample, "seed": options.seed, "profile": options.profile,
            "timeouts": settings.timeouts, "deadline": options.deadline,
            "jobs": options.jobs, "kit_workers": options.kit_workers, "strict": options.strict,
            "all_contracts": options.all_contracts, "guided": settings.guided,
            "baseline": {"kit": asdict(baseline.kit), "cpython": asdict(baseline.cpython)}}


def main(argv: list[str] | None = None) -> int:
    """Run the measurement; 0 once the reports are written, 2 when the setup is broken."""
    options = _parser().parse_args(argv)
    source_path = stdlib_socketserver()
    shutil.rmtree(options.report_dir / "logs", ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="socketserver-mutation-") as temporary:
        workdir = Path(temporary)
        source = Path(shutil.copy(source_path, workdir / "socketserver.py")).read_text()
        mutations = enumerate_mutations(source)
        chosen = choose([m for m in mutations if not options.only or m.id in options.only],
                        options.sample, options.seed)
        settings = Settings(workdir, options.profile,
                            dict.fromkeys(TIMEOUT_FLOORS, options.timeout or BASELINE_TIMEOUT),
                            cpython_suite_available(), Budget(options.deadline),
                            uuid.uuid4().hex, options.all_contracts, options.report_dir / "logs",
                            options.kit_workers, options.strict, not options.unguided)
        print(f"{len(mutations)} mutants of {source_path}; running {len(chosen)} "
              f"(seed {options.seed}), {options.jobs} at a time", flush=True)
        baseline = judge(None, source, settings)
        problem = baseline_problem(baseline, settings)
        if problem:
            print(f"the unmutated socketserver.py does not pass: {problem}", file=sys.stderr)
            return 2
        try:
            line_contracts = (read_line_contracts(kit_reports(workdir / BASELINE),
                                                  MUTANT_FILE, source)
                              if settings.guided else None)
        except BaselineCoverageError as error:
            print(f"no coverage of the unmutated copy to select contracts by: {error} "
                  "(--unguided runs the whole catalog on every mutant)", file=sys.stderr)
            return 2
        settings = replace(settings, timeouts=suite_timeouts(baseline, options.timeout),
                           line_contracts=line_contracts)
        timeouts = settings.timeouts
        print(f"unmutated: kit {_describe(baseline.kit)}, CPython suite "
              f"{_describe(baseline.cpython)}; per-mutant timeouts: kit {timeouts['kit']:.0f}s, "
              f"CPython suite {timeouts['cpython']:.0f}s", flush=True)
        results = run_all(chosen, source, settings, options.jobs)
    summary = summary_lines(results, len(mutations), options.profile)
    header = _header(options, source_path, len(mutations), len(chosen), settings, baseline)
    write_reports(options.report_dir, header, results, summary)
    print("\n".join(summary))
    print(f"reports: {options.report_dir}/{{mutation.json,survivors.md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
