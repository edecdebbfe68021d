"""``tox -e repeat -- --target NAME --times N``: does the kit give a target the same verdict
on every run?

Runs the whole catalog N times on one target (``--target NAME``, or ``--impl MODULE|FILE``),
one kit run after another, each as ``python -m conformance --target NAME --report-dir
<run>/reports --hypothesis-profile ci -n W`` with a fresh report folder and a fresh Hypothesis
storage folder: the ``ci`` profile is derandomized and keeps no example database, so every
run tries the same examples and nothing one run found carries over to the next. Options for
the kit go after ``--`` (or one at a time with ``--kit-arg``), e.g. ``-- --contract 'echo.*'
--timeout-scale 2``; the options the tool sets itself are refused there.

It then compares the verdicts per (contract id, server class) across the runs, read from
each run's results.json (docs/results.md), and prints every case whose outcome was not the
same in all runs, with how many runs gave each outcome and the messages of the runs that
departed from the usual one, then one summary line. A case a run lists as unfinished (the
run was stopped) counts as the outcome ``unfinished``; one a run does not list at all, as
``absent``; a run that left no results.json counts against the result but is not compared
case by case.

Every run is bounded: after ``--timeout`` seconds (default 900) it gets SIGTERM, on which the
kit writes a partial results.json, and SIGKILL to its process group 60 s later; the report
says which runs timed out. ``--load N`` keeps N CPU spin loops running meanwhile, as other
jobs would on a shared CI machine; each ends by itself once every run could have timed out,
and the tool kills them as soon as it is done, also on Ctrl-C or SIGTERM.

Everything goes to ``<report-dir>/<target>.json`` (default ``reports/repeat``): the machine
(CPUs, load average before and after), the date, the kit's commit, the load, each run's exit
status, seconds and case counts, and the changed cases; each run's folder (its reports, the
kit's output in kit.log) stays in ``<report-dir>/<target>-runs/run-K``.

Exit status: 0 when every case had the same outcome in every run, 1 when some did not or a
run timed out or left no results.json, 2 for bad usage (the tool's own, or the kit refusing
a run's options), 128 + the signal's number when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bench_runs

ROOT = Path(__file__).resolve().parent.parent
TIMES = 20
RUN_TIMEOUT = 900.0
# As the named targets' tox environments run the kit: contract tests mostly wait on sockets.
WORKERS = "4"
PROFILE = "ci"
# A spin loop of --load ends by itself this long after every run could have timed out.
LOAD_MARGIN = 60.0
MESSAGE_WIDTH = 160
# The kit's exit statuses for a run that checked nothing: bad usage, no contract selected.
KIT_REFUSED = (2, 5)
# Set by the tool for every run; refused among the kit's options.
OWN_OPTIONS = ("--target", "--impl", "--report-dir", "--hypothesis-profile", "-n",
               "--numprocesses")
# Outcomes of a case a run did not finish (listed as unfinished) or does not list at all.
UNFINISHED = "unfinished"
ABSENT = "absent"
_SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"

# A case: (contract id, server class).
Key = tuple[str, str]


@dataclass(frozen=True)
class Verdict:
    """One case's outcome in one run, and the message that came with it."""

    outcome: str
    message: str | None = None


@dataclass(frozen=True)
class OddOnes:
    """The runs in which a case had the same unusual outcome and message."""

    outcome: str
    message: str | None
    runs: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "runs": list(self.runs), "message": self.message}


@dataclass(frozen=True)
class ChangedCase:
    """A case whose outcome was not the same in every compared run: the runs (numbered
    from 1) per outcome, the usual outcome, and the runs that departed from it."""

    contract: str
    server: str
    runs: Mapping[str, tuple[int, ...]]
    usual: str
    odd: tuple[OddOnes, ...]

    def counts(self) -> str:
        """``passed 19, failed 1``: the usual outcome first, then by how many runs."""
        ranked = sorted(self.runs.items(), key=lambda item: (item[0] != self.usual,
                                                             -len(item[1]), item[0]))
        return ", ".join(f"{outcome} {len(runs)}" for outcome, runs in ranked)

    def to_json(self) -> dict[str, Any]:
        return {"contract": self.contract, "server": self.server, "usual": self.usual,
                "runs": {outcome: list(runs) for outcome, runs in self.runs.items()},
                "odd": [odd.to_json() for odd in self.odd]}


@dataclass(frozen=True)
class Comparison:
    """The verdicts of several runs of one target, compared case by case."""

    runs: int
    cases: int
    changed: tuple[ChangedCase, ...]
    without_results: tuple[int, ...]

    @property
    def stable(self) -> bool:
        """True when every run left results and every case had one outcome in all."""
        return not self.changed and not self.without_results


# Comparing runs ------------------------------------------------------------------------

def verdicts(results: Mapping[str, Any]) -> dict[Key, Verdict]:
    """Every case a results.json lists, with its outcome; a case it lists only as
    unfinished (the run was stopped before it) has the outcome ``unfinished``."""
    found = {(contract["id"], case["server"]): Verdict(case["outcome"], case.get("message"))
             for contract in results.get("contracts", []) for case in contract.get("cases", [])}
    for entry in results.get("unfinished", []):
        for server in entry.get("servers", []):
            found.setdefault((entry["id"], server), Verdict(UNFINISHED))
    return found


def compare(runs: Sequence[Mapping[str, Any] | None]) -> Comparison:
    """Compare the results.json of each run (None: the run left none). Runs are numbered
    from 1 in the given order. A case that some compared runs list and another does not is
    ``absent`` there; runs without results are named, not compared."""
    by_run = {number: verdicts(results) for number, results in enumerate(runs, 1)
              if results is not None}
    keys = sorted({key for found in by_run.values() for key in found})
    changed = [case for case in (changed_case(key, {number: found.get(key, Verdict(ABSENT))
                                                    for number, found in by_run.items()})
                                 for key in keys) if case is not None]
    return Comparison(runs=len(runs), cases=len(keys), changed=tuple(changed),
                      without_results=tuple(number for number, results in enumerate(runs, 1)
                                            if results is None))


def changed_case(key: Key, by_run: Mapping[int, Verdict]) -> ChangedCase | None:
    """The case as a ChangedCase if its outcome differs between runs, else None."""
    runs: dict[str, tuple[int, ...]] = {}
    for number in sorted(by_run):
        runs[by_run[number].outcome] = (*runs.get(by_run[number].outcome, ()), number)
    if len(runs) < 2:
        return None
    usual = usual_outcome(runs)
    return ChangedCase(contract=key[0], server=key[1], runs=runs, usual=usual,
                       odd=odd_ones(by_run, usual))


def usual_outcome(runs: Mapping[str, tuple[int, ...]]) -> str:
    """The outcome most runs gave; on a tie, the one of the earliest run."""
    return max(runs, key=lambda outcome: (len(runs[outcome]), -min(runs[outcome])))


def odd_ones(by_run: Mapping[int, Verdict], usual: str) -> tuple[OddOnes, ...]:
    """The runs whose outcome was not ``usual``, grouped by outcome and message, in the
    order of their first run."""
    groups: dict[Verdict, list[int]] = {}
    for number in sorted(by_run):
        if by_run[number].outcome != usual:
            groups.setdefault(by_run[number], []).append(number)
    return tuple(OddOnes(verdict.outcome, verdict.message, tuple(numbers))
                 for verdict, numbers in groups.items())


def case_counts(results: Mapping[str, Any]) -> dict[str, int]:
    """How many cases a results.json lists per outcome (unfinished ones included)."""
    return dict(Counter(verdict.outcome for verdict in verdicts(results).values()))


def nothing_checked(results: Mapping[str, Any]) -> str | None:
    """Why a run checked nothing (every case skipped, as for a target that cannot run
    here: its first case's message), or None when some case passed or failed."""
    found = verdicts(results)
    if any(verdict.outcome != "skipped" for verdict in found.values()):
        return None
    messages = [verdict.message for verdict in found.values()]
    return shorten(messages[0]) if messages else "no case ran"


def shorten(message: str | None, width: int = MESSAGE_WIDTH) -> str:
    """A message's first non-empty line, its whitespace collapsed, cut to ``width``."""
    lines = [line for line in (message or "").splitlines() if line.strip()]
    line = " ".join(lines[0].split()) if lines else "(no message)"
    return line if len(line) <= width else line[:width - 3] + "..."


# What the tool prints ------------------------------------------------------------------

def changed_lines(comparison: Comparison) -> list[str]:
    """Two or more lines per changed case: the case and its counts, then each group of odd
    runs with its shortened message."""
    lines = []
    for case in comparison.changed:
        lines.append(f"CHANGED  {case.contract}  {case.server}: {case.counts()}")
        for odd in case.odd:
            named = ", ".join(str(number) for number in odd.runs)
            lines.append(f"         run{'s' if len(odd.runs) > 1 else ''} {named} "
                         f"{odd.outcome}: {shorten(odd.message)}")
    return lines


def summary_line(target: str, comparison: Comparison, timed_out: Sequence[int]) -> str:
    """``20 runs of stdlib: 311 cases, 0 changed verdicts``, and what went wrong with runs."""
    line = (f"{plural(comparison.runs, 'run')} of {target}: "
            f"{plural(comparison.cases, 'case')}, "
            f"{plural(len(comparison.changed), 'changed verdict')}")
    if timed_out:
        line += f"; timed out: run {', '.join(map(str, timed_out))}"
    if comparison.without_results:
        line += ("; no results.json: run "
                 + ", ".join(map(str, comparison.without_results)))
    return line


def plural(count: int, noun: str) -> str:
    """``1 case``, ``2 cases``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# Running the kit -----------------------------------------------------------------------

@dataclass
class RunRecord:
    """One run of the kit: how it ended, and what its results.json held (None: none)."""

    number: int
    folder: Path
    finished: bench_runs.Finished
    results: dict[str, Any] | None
    problem: str | None

    @property
    def timed_out(self) -> bool:
        return self.finished.terminated_at is not None

    def progress(self, times: int) -> str:
        """``run 2/20: exit 0, 181.3s, 311 cases: 290 passed, 21 skipped``."""
        line = (f"run {self.number}/{times}: exit {self.finished.code}, "
                f"{self.finished.seconds:.1f}s")
        if self.timed_out:
            line += f", timed out (SIGTERM at {self.finished.terminated_at:g}s)"
        if self.results is None:
            return f"{line}, {self.problem}"
        counts = case_counts(self.results)
        return (f"{line}, {plural(sum(counts.values()), 'case')}: "
                + ", ".join(f"{count} {outcome}" for outcome, count in sorted(
                    counts.items(), key=lambda item: -item[1])))

    def to_json(self) -> dict[str, Any]:
        return {"run": self.number, **self.finished.to_json(), "timed_out": self.timed_out,
                "problem": self.problem,
                "complete": self.results.get("complete") if self.results else None,
                "cases": case_counts(self.results) if self.results else None,
                "folder": str(self.folder)}


def read_results(report_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The one results.json under ``report_dir/<target>/``, parsed, or None and why not."""
    found = sorted(report_dir.glob("*/results.json"))
    if len(found) != 1:
        return None, "no results.json" if not found else f"{len(found)} results.json files"
    try:
        return json.loads(found[0].read_text(encoding="utf-8")), None
    except (OSError, ValueError) as exc:
        return None, f"results.json does not parse: {exc}"


def kit_command(target: list[str], report_dir: Path, *, profile: str, workers: str,
                kit_args: Sequence[str]) -> list[str]:
    """The command of one run: the kit on ``target`` (``["--target", NAME]`` or
    ``["--impl", SPEC]``), with its reports in ``report_dir``."""
    return [sys.executable, "-m", "conformance", *target, "--report-dir", str(report_dir),
            "--hypothesis-profile", profile, "-n", workers, *kit_args]


def run_once(number: int, folder: Path, command_for: Callable[[Path], list[str]],
             timeout: float) -> RunRecord:
    """Run the kit once in a fresh ``folder``: its reports, its Hypothesis storage and its
    output (kit.log) go there; the kit runs in this process's working folder, so that
    relative paths among its options mean what they say."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    finished = bench_runs.run(
        command_for(folder / "reports"), cwd=Path.cwd(), log=folder / "kit.log",
        term_after=timeout, env={"HYPOTHESIS_STORAGE_DIRECTORY": str(folder / "hypothesis")})
    results, problem = read_results(folder / "reports")
    return RunRecord(number, folder, finished, results, problem)


def last_line(log: Path) -> str:
    """The last non-empty line of a kit's output: its error, when it refused to run."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@contextlib.contextmanager
def cpu_load(processes: int, seconds: float) -> Iterator[None]:
    """``processes`` busy CPU loops while the block runs. Each ends by itself after
    ``seconds`` even if this process is killed, and they are killed when the block ends,
    however it ends."""
    spinners: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(processes):
            spinners.append(subprocess.Popen(
                [sys.executable, "-c", _SPIN.format(seconds=seconds)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True))
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: raised where the tool was, so that every cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise Interrupted; the handlers are restored
    after it."""
    def interrupt(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupt)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def settled(comparison: Comparison, records: Sequence[RunRecord]) -> bool:
    """True when every case had one outcome in every run, and every run ended by itself
    and left its results.json: the tool's exit status 0."""
    return comparison.stable and not any(record.timed_out for record in records)


# The report ----------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    """What the runs ran on, and how busy it was as they started."""
    return {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_before": bench_runs.loadavg()}


def kit_commit() -> str | None:
    """The commit of this checkout (``-dirty`` when it has changes), or None outside git."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty",
                               "--abbrev=40"], capture_output=True, text=True, timeout=30,
                              check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def report(options: argparse.Namespace, kit_args: Sequence[str], facts: dict[str, Any],
           records: Sequence[RunRecord]) -> dict[str, Any]:
    """The JSON report of the runs so far."""
    comparison = compare([record.results for record in records])
    command = kit_command(target_words(options), Path("<run>/reports"),
                          profile=options.hypothesis_profile, workers=options.workers,
                          kit_args=kit_args)
    return {
        "schema": "socketserver-conformance/repeat", "version": 1,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": target_label(options), "times": options.times,
        "command": shlex.join(["python", *command[1:]]), "timeout": options.timeout,
        "load": ({"processes": options.load, "kind": "CPU spin loop",
                  "ends_after": load_seconds(options)} if options.load else None),
        **facts, "loadavg_after": bench_runs.loadavg(),
        "runs": [record.to_json() for record in records],
        "cases": comparison.cases, "stable": settled(comparison, records),
        "without_results": list(comparison.without_results),
        "timed_out": [record.number for record in records if record.timed_out],
        "changed": [case.to_json() for case in comparison.changed],
    }


# The command line ----------------------------------------------------------------------

def _positive(kind: type[int] | type[float], least: float) -> Callable[[str], Any]:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least:g}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repeat", usage="%(prog)s [options] [-- KIT-OPTION ...]",
        description="Run the kit's whole catalog N times on one target and print every "
                    "verdict that was not the same in all runs.")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--target", metavar="NAME", help="a named target (default: stdlib)")
    which.add_argument("--impl", metavar="MODULE|FILE", help="an implementation instead")
    parser.add_argument("--times", type=_positive(int, 1), default=TIMES, metavar="N",
                        help=f"how many runs (default: {TIMES})")
    parser.add_argument("-n", "--workers", default=WORKERS, metavar="W",
                        help=f"the kit's -n (xdist workers) in every run (default: {WORKERS})")
    parser.add_argument("--hypothesis-profile", default=PROFILE, metavar="NAME",
                        help=f"the Hypothesis profile of every run (default: {PROFILE}: "
                             "derandomized, no example database)")
    parser.add_argument("--timeout", type=_positive(float, 1), default=RUN_TIMEOUT,
                        metavar="SECONDS", help="SIGTERM a run after this long, SIGKILL it "
                        f"{bench_runs.GRACE:g}s later (default: {RUN_TIMEOUT:g})")
    parser.add_argument("--load", type=_positive(int, 0), default=0, metavar="N",
                        help="keep N CPU spin loops running meanwhile (default: 0)")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "reports" / "repeat",
                        help="where <target>.json and the runs' folders go "
                             "(default: reports/repeat)")
    parser.add_argument("--kit-arg", action="append", default=[], metavar="ARG",
                        help="one more word for the kit's command line, e.g. "
                             "--kit-arg=--contract --kit-arg='echo.*' (repeatable)")
    return parser


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The tool's options, and the kit's (those after ``--`` and each ``--kit-arg``);
    exits 2 with argparse's message on bad usage."""
    argv = list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = _parser()
    options = parser.parse_args(argv[:split])
    kit_args = [*options.kit_arg, *argv[split + 1:]]
    owned = [word for word in kit_args if word.split("=", 1)[0] in OWN_OPTIONS
             or (word.startswith("-n") and not word.startswith("--"))]
    if owned:
        parser.error(f"{owned[0]} is the tool's own option: give it before --")
    return options, kit_args


def target_words(options: argparse.Namespace) -> list[str]:
    """The kit's words for the target: ``--impl SPEC``, else ``--target NAME``."""
    return ["--impl", options.impl] if options.impl else ["--target", options.target or "stdlib"]


def target_label(options: argparse.Namespace) -> str:
    """The report's name: the named target, or the implementation's module or file stem."""
    if options.impl:
        return Path(options.impl).stem if options.impl.endswith(".py") else options.impl
    return options.target or "stdlib"


def load_seconds(options: argparse.Namespace) -> float:
    """When a spin loop of --load ends by itself: after every run could have been stopped."""
    return options.times * (options.timeout + bench_runs.GRACE) + LOAD_MARGIN


def run_all(options: argparse.Namespace, kit_args: Sequence[str],
            save: Callable[[Sequence[RunRecord]], None]) -> list[RunRecord] | None:
    """Every run, each saved as it ends; None when the kit refused the options (it then
    exits 2 or 5) or a run skipped every case (a target that cannot run here): having
    checked nothing, repeating proves nothing."""
    runs_dir = options.report_dir / f"{target_label(options)}-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)

    def command_for(report_dir: Path) -> list[str]:
        return kit_command(target_words(options), report_dir,
                           profile=options.hypothesis_profile, workers=options.workers,
                           kit_args=kit_args)

    records: list[RunRecord] = []
    for number in range(1, options.times + 1):
        record = run_once(number, runs_dir / f"run-{number}", command_for, options.timeout)
        # A run stopped at its bound may not have reached its first case (on a busy
        # machine): it counts as timed out, not as a run that checked nothing.
        refused = None if record.timed_out else _refusal(record)
        if refused:
            print(f"repeat: error: {refused}", file=sys.stderr)
            return None
        records.append(record)
        print(record.progress(options.times), flush=True)
        save(records)
    return records


def _refusal(record: RunRecord) -> str | None:
    """Why a run that ended by itself checked nothing (the kit refused it, or it skipped
    every case), or None."""
    if record.finished.code in KIT_REFUSED and record.results is None:
        return (f"the kit refused the run (exit {record.finished.code}): "
                f"{last_line(record.folder / 'kit.log')}")
    skipped_why = nothing_checked(record.results) if record.results else None
    if skipped_why:
        return f"run {record.number} checked nothing, every case was skipped: {skipped_why}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run, compare, print and save; the exit status of the module docstring."""
    options, kit_args = parse_args(sys.argv[1:] if argv is None else argv)
    facts = {**machine(), "kit_commit": kit_commit()}
    path = options.report_dir / f"{target_label(options)}.json"
    # A report of an earlier invocation would pass for this one's until its first run ends.
    path.unlink(missing_ok=True)

    def save(records: Sequence[RunRecord]) -> None:
        options.report_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report(options, kit_args, facts, records), indent=2) + "\n")

    print(f"{plural(options.times, 'run')} of {target_label(options)}, load average "
          f"{facts['loadavg_before']} on {facts['cpus']} CPUs"
          + (f", {plural(options.load, 'CPU spin loop')} besides" if options.load else ""),
          flush=True)
    try:
        with signals_interrupt(), cpu_load(options.load, load_seconds(options)):
            records = run_all(options, kit_args, save)
    except Interrupted as exc:
        print(f"repeat: interrupted by {exc}"
              + (f"; {path} has the runs that ended" if path.exists() else ""), file=sys.stderr)
        return 128 + exc.signum
    if records is None:
        return 2
    comparison = compare([record.results for record in records])
    print("\n".join([*changed_lines(comparison), summary_line(
        target_label(options), comparison, [r.number for r in records if r.timed_out])]))
    print(f"report: {path}")
    return 0 if settled(comparison, records) else 1


if __name__ == "__main__":
    sys.exit(main())
