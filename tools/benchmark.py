"""``tox -e bench``: the project's four performance figures, and how long the kit takes
against the standard library per Hypothesis profile, with its peak memory.

The figures (issue 10), each printed next to its target with PASS or MISS:

1. catalog: one kit run with the stdlib and every broken and misbehaving fixture as targets
   side by side (``--hypothesis-profile quick``, the ``-n`` of ``tox -e stdlib``); each
   target's catalog time, the sum of its cases' durations in its results.json, within 2x
   of the stdlib's (tools/bench_runs.py).
2. stopped: a thorough-profile run against the stdlib (it lasts well past 60 s) sent
   SIGTERM at 60 s leaves a results.json that parses and lists every contract that
   finished, with all its cases (tools/bench_runs.py).
3. echo: the kit's time per echo.upper example (its stream clients and handler reports,
   against ThreadingTCPServer in a harness) within 3x of a raw replay of the same plans on
   plain sockets against a plain ThreadingTCPServer in this process (tools/bench_echo.py).
4. selftest: ``tox -e selftest``'s pytest command within 10 minutes; timed only with
   ``--selftest`` (it takes that long), else reported as not measured. ``.ci/run`` (15
   minutes) builds a virtualenv from the network and is not measured.

The profile timings: ``python -m conformance`` against the stdlib end to end under each
Hypothesis profile asked for (``dev``, the local default, and ``ci``, what CI runs), N
times each, every run in a fresh temporary folder so that no example database carries
over. For each run it records the wall-clock time and the peak resident memory of the
largest process of the run (the kit's pytest process, the harness, or a forked server
child): ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a small wrapper process
that runs only that one kit, so that runs do not share a high-water mark. It also records
the CPU time of the whole run (user and system), which tells waiting (bounded waits,
sleeps) from computing. ``--profile quick`` (or ``thorough``) and ``--workers N`` time other
runs, e.g. ``--profile quick --workers 3 -n 1`` for a quick look at a change. ``--only
figures`` skips the profile timings, ``--only profiles`` skips the figures.

Everything goes to ``benchmark.json`` in the report folder (``reports/benchmark``), with
the machine, its load average before and after, and the date. Targets are reported
against, never asserted (a MISS does not change the exit status): the numbers depend on
the machine and on whatever else it is running, which the load average shows.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bench_echo
import bench_runs

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("dev", "ci")
# Profiles that can be timed on request: quick for a first look, thorough for the long runs.
PROFILE_CHOICES = ("quick", "dev", "ci", "thorough")
# How many of the slowest contracts the summary names.
SLOWEST = 5
TARGET_SECONDS = 60.0
RUN_TIMEOUT = 900.0
# The figures, in the order the table shows them.
FIGURES = ("catalog", "stopped", "echo", "selftest")
# The catalog run on every fixture takes tens of minutes on 2 busy cores.
CATALOG_TIMEOUT = 5400.0
SELFTEST_TIMEOUT = 3600.0
ECHO_EXAMPLES = 40
# Runs one command, then prints its exit status, the peak RSS (KiB on Linux) of the largest
# process it waited for and the CPU time of all of them, as one JSON line on stderr.
_WRAPPER = """\
import json, resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "maxrss_kib": usage.ru_maxrss,
                  "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "user_seconds": usage.ru_utime, "sys_seconds": usage.ru_stime}),
      file=sys.stderr)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Time python -m conformance against the stdlib, per Hypothesis profile.")
    parser.add_argument("-n", "--repeat", type=int, default=3, metavar="N",
                        help="runs per profile (default: 3)")
    parser.add_argument("--profile", action="append", choices=PROFILE_CHOICES, default=None,
                        help="profiles to time (repeatable; default: dev and ci)")
    parser.add_argument("--workers", metavar="N", default=None,
                        help="the kit's -n in every run (default: that of tox -e stdlib)")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, metavar="SECONDS",
                        help=f"stop a run after this long (default: {RUN_TIMEOUT:g})")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "reports" / "benchmark",
                        help="where benchmark.json goes")
    parser.add_argument("--only", choices=("figures", "profiles"), default=None,
                        help="only the four figures, or only the profile timings "
                             "(default: both)")
    figures = parser.add_argument_group("figures")
    figures.add_argument("--figure", action="append", choices=FIGURES, default=None,
                         help="measure only this figure (repeatable; default: all; "
                              "selftest needs --selftest)")
    figures.add_argument("--selftest", action="store_true",
                         help="time tox -e selftest's pytest command (about 10 minutes)")
    figures.add_argument("--catalog-profile", default="quick", metavar="NAME",
                         help="Hypothesis profile of the catalog run (default: quick)")
    figures.add_argument("--catalog-timeout", type=float, default=CATALOG_TIMEOUT,
                         metavar="SECONDS", help="SIGTERM the catalog run after this long "
                         f"(default: {CATALOG_TIMEOUT:g})")
    figures.add_argument("--fixtures", action="append", default=[], metavar="PREFIX",
                         help="catalog run: only fixtures whose name starts with PREFIX "
                              "(repeatable; for development, the figure is then partial)")
    figures.add_argument("--contract", action="append", default=[], metavar="GLOB",
                         help="catalog run: only these contracts (repeatable; partial)")
    figures.add_argument("--stop-after", type=float, default=bench_runs.STOP_AFTER,
                         metavar="SECONDS", help="when the stopped run gets SIGTERM "
                         f"(default: {bench_runs.STOP_AFTER:g})")
    figures.add_argument("--echo-examples", type=int, default=ECHO_EXAMPLES, metavar="N",
                         help=f"echo.upper examples replayed (default: {ECHO_EXAMPLES})")
    return parser


def stdlib_workers(tox_ini: Path = ROOT / "tox.ini") -> str:
    """The ``-n`` (xdist workers) that ``tox -e stdlib`` passes to the kit."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(tox_ini, encoding="utf-8")
    words = config.get("testenv:stdlib", "commands").split()
    if "-n" not in words[:-1]:
        raise SystemExit(f"{tox_ini}: [testenv:stdlib] passes no -n to the kit")
    return words[words.index("-n") + 1]


def kit_command(profile: str, report_dir: str, workers: str | None = None) -> list[str]:
    """The kit against this interpreter's stdlib, as tox -e stdlib runs it (with
    ``workers``, that -n instead)."""
    return [sys.executable, "-m", "conformance", "--hypothesis-profile", profile,
            "--report-dir", report_dir, "-n", workers or stdlib_workers()]


def measure(profile: str, timeout: float, workers: str | None = None) -> dict[str, Any]:
    """One end-to-end run: seconds, exit status, peak RSS of its largest process, CPU."""
    with tempfile.TemporaryDirectory(prefix="socketserver-bench-") as folder:
        command = [sys.executable, "-c", _WRAPPER,
                   *kit_command(profile, os.path.join(folder, "reports"), workers)]
        started = time.perf_counter()
        try:
            finished = subprocess.run(command, cwd=folder, capture_output=True,
                                      text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"seconds": round(time.perf_counter() - started, 2), "code": None,
                    "maxrss_mib": None, "cpu_seconds": None, "user_seconds": None,
                    "sys_seconds": None, "note": f"stopped after {timeout:g}s"}
        seconds = time.perf_counter() - started
        contracts = contract_seconds(Path(folder, "reports", "stdlib", "results.json"))
    last_line = (finished.stderr.strip().splitlines() or ["{}"])[-1]
    reported = json.loads(last_line)
    return {"seconds": round(seconds, 2), "code": reported.get("code"),
            "maxrss_mib": round(reported.get("maxrss_kib", 0) / 1024, 1),
            "cpu_seconds": round(reported.get("cpu_seconds", 0.0), 2),
            "user_seconds": round(reported.get("user_seconds", 0.0), 2),
            "sys_seconds": round(reported.get("sys_seconds", 0.0), 2),
            "contract_seconds": contracts}


def contract_seconds(results: Path) -> dict[str, float]:
    """Seconds each contract took in a run (all its server classes), from results.json."""
    if not results.is_file():
        return {}
    contracts = json.loads(results.read_text()).get("contracts", [])
    return {c["id"]: round(sum(case.get("duration") or 0.0 for case in c.get("cases", [])), 2)
            for c in contracts}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of the time and the peak memory of a profile's runs."""
    seconds = [run["seconds"] for run in runs]
    memory = [run["maxrss_mib"] for run in runs if run["maxrss_mib"] is not None]
    cpu = [run["cpu_seconds"] for run in runs if run["cpu_seconds"] is not None]
    return {
        "runs": len(runs),
        "failed_runs": sum(run["code"] != 0 for run in runs),
        "seconds": {"median": round(statistics.median(seconds), 2),
                    "min": min(seconds), "max": max(seconds)},
        "maxrss_mib": ({"median": statistics.median(memory), "min": min(memory),
                        "max": max(memory)} if memory else None),
        "cpu_seconds_median": round(statistics.median(cpu), 2) if cpu else None,
        "slowest_contracts": slowest(runs),
    }


def slowest(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The contracts that took longest, by their median seconds over the runs."""
    ids = {contract_id for run in runs for contract_id in run.get("contract_seconds", {})}
    medians = {contract_id: statistics.median(run["contract_seconds"].get(contract_id, 0.0)
                                              for run in runs if "contract_seconds" in run)
               for contract_id in ids}
    ranked = sorted(medians.items(), key=lambda item: -item[1])[:SLOWEST]
    return {contract_id: round(seconds, 1) for contract_id, seconds in ranked}


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    """The summary as a small fixed-width table."""
    lines = [f"{'profile':<8}{'runs':>5}{'median s':>10}{'min s':>8}{'max s':>8}"
             f"{'CPU s (median)':>16}{'peak RSS MiB (median)':>23}{'failed':>8}"]
    for profile, summary in results.items():
        seconds, memory = summary["seconds"], summary["maxrss_mib"]
        rss = "-" if memory is None else f"{memory['median']:.1f}"
        cpu = summary["cpu_seconds_median"]
        cpu_text = "-" if cpu is None else f"{cpu:.1f}"
        lines.append(f"{profile:<8}{summary['runs']:>5}{seconds['median']:>10.1f}"
                     f"{seconds['min']:>8.1f}{seconds['max']:>8.1f}{cpu_text:>16}{rss:>23}"
                     f"{summary['failed_runs']:>8}")
    return lines


def verdict(results: dict[str, dict[str, Any]]) -> str:
    """How the medians compare with the one-minute target (reported, not asserted)."""
    parts = []
    for profile, summary in results.items():
        median = summary["seconds"]["median"]
        relation = "within" if median <= TARGET_SECONDS else "over"
        parts.append(f"{profile} {median:.1f}s ({relation})")
    return (f"target: tox -e stdlib within about {TARGET_SECONDS:g}s on 2 cores (tox's own "
            "packaging time comes on top): " + ", ".join(parts))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"python": sys.version.split()[0], "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg": bench_runs.loadavg()}


def time_profiles(options: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Every run of every profile asked for."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for profile in options.profile or list(PROFILES):
        runs[profile] = []
        for number in range(1, options.repeat + 1):
            run = measure(profile, options.timeout, options.workers)
            runs[profile].append(run)
            print(f"{profile} run {number}/{options.repeat}: {run['seconds']:.1f}s, "
                  f"exit {run['code']}, CPU {run['cpu_seconds']}s "
                  f"(user {run['user_seconds']}s, sys {run['sys_seconds']}s), "
                  f"peak RSS {run['maxrss_mib']} MiB", flush=True)
    return runs


def print_profiles(results: dict[str, dict[str, Any]]) -> None:
    print("\n".join(table(results)))
    for profile, summary in results.items():
        named = ", ".join(f"{contract_id} {seconds:g}s"
                          for contract_id, seconds in summary["slowest_contracts"].items())
        print(f"slowest contracts ({profile}, median s): {named or '-'}")
    print(verdict(results))


def echo_figure(examples: int) -> dict[str, Any]:
    """Figure 3, as the table shows it."""
    found = bench_echo.measure(examples)
    ratio = found["ratio"]
    return {
        "figure": "echo", "title": "kit time per echo.upper example vs raw replay",
        "measured": (f"{ratio:.2f}x (kit {found['kit_ms_per_example']:.1f} ms, raw "
                     f"{found['raw_ms_per_example']:.1f} ms, {found['examples']} examples)"),
        "target": f"<= {bench_echo.TARGET_RATIO:g}x",
        "verdict": "PASS" if ratio is not None and ratio <= bench_echo.TARGET_RATIO else "MISS",
        "details": found,
    }


def measure_figures(options: argparse.Namespace,
                    save: Callable[[dict[str, dict[str, Any]]], None],
                    ) -> dict[str, dict[str, Any]]:
    """The figures asked for, each saved as soon as it is measured (a benchmark stopped
    midway keeps those); one that cannot be measured is reported as ERROR with the
    reason."""
    chosen = options.figure or list(FIGURES)
    workers = options.workers or stdlib_workers()
    folder = options.report_dir
    steps = {
        "echo": lambda: echo_figure(options.echo_examples),
        "stopped": lambda: bench_runs.stopped_figure(folder, profile="thorough",
                                                     workers=workers,
                                                     stop_after=options.stop_after),
        "catalog": lambda: bench_runs.catalog_figure(
            folder, profile=options.catalog_profile, workers=workers,
            timeout=options.catalog_timeout, only=options.fixtures,
            contracts=options.contract),
        "selftest": lambda: (bench_runs.selftest_figure(folder, timeout=SELFTEST_TIMEOUT)
                             if options.selftest else bench_runs.selftest_not_measured()),
    }
    figures: dict[str, dict[str, Any]] = {}
    # The short ones first; the table keeps the figures' own order.
    for name in ("echo", "stopped", "catalog", "selftest"):
        if name not in chosen:
            continue
        print(f"measuring {name} (load average {bench_runs.loadavg()}) ...", flush=True)
        try:
            figures[name] = steps[name]()
        except Exception as exc:  # reported in the table, not a crash of the benchmark
            figures[name] = {"figure": name, "title": name, "measured": f"error: {exc!r}",
                             "target": "-", "verdict": "ERROR", "details": None}
        print(f"  {figures[name]['measured']}: {figures[name]['verdict']}", flush=True)
        save(figures)
    return {name: figures[name] for name in FIGURES if name in figures}


def figures_table(figures: dict[str, dict[str, Any]]) -> list[str]:
    """The figures as a fixed-width table: figure, measured, target, verdict."""
    rows = [("figure", "measured", "target", "")]
    rows += [(f"{FIGURES.index(name) + 1}. {name}", figure["measured"], figure["target"],
              figure["verdict"]) for name, figure in figures.items()]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]
            for row in rows]


def figure_notes(figures: dict[str, dict[str, Any]]) -> list[str]:
    """A few lines under the table: what each figure is made of."""
    lines = []
    catalog = (figures.get("catalog") or {}).get("details")
    if catalog:
        run = catalog["run"]
        lines.append(f"catalog run: {run['seconds']:.0f}s wall, {run['cpu_seconds']:.0f}s "
                     f"CPU, exit {run['code']}, load {catalog['loadavg_before']} -> "
                     f"{catalog['loadavg_after']}; {catalog['command'][:100]}...")
        rows = catalog["targets"]
        ranked = sorted((row for row in rows if row["kind"] in ("broken", "misbehaving")
                         and row.get("ratio") is not None), key=lambda row: -row["ratio"])
        lines.append("  slowest targets (catalog s, ratio): " + ", ".join(
            f"{row['name']} {row['seconds']:.0f}s {row['ratio']:.2f}x" for row in ranked[:6]))
        lines.append("  reference: " + ", ".join(
            f"{row['name']} ({row['kind']}) {row['seconds']}s" for row in rows
            if row["kind"] in ("stdlib", "warm-up")))
        if catalog["over_target"]:
            lines.append(f"  over {bench_runs.CATALOG_RATIO:g}x: "
                         + ", ".join(catalog["over_target"]))
    stopped = (figures.get("stopped") or {}).get("details")
    if stopped and "finished" in stopped:
        run = stopped["run"]
        lines.append(f"stopped run: exit {run['code']}, exited "
                     f"{run['exited_after_term']}s after SIGTERM, stopped: "
                     f"{stopped['stopped']}, {stopped['unfinished_cases']} unfinished cases, "
                     f"missing cases: {stopped['missing_cases'] or 'none'}")
    echo = (figures.get("echo") or {}).get("details")
    if echo:
        lines.append(f"echo: kit {echo['kit_exchange_ms_per_example']:.1f} ms exchange + "
                     f"{echo['kit_handler_reports_ms_per_example']:.1f} ms handler reports "
                     f"per example (exchange alone {echo['exchange_only_ratio']:.2f}x raw), "
                     f"{echo['clients']} clients, {echo['payload_bytes']} bytes")
    return lines


def main(argv: list[str] | None = None) -> int:
    """The figures, then the profiles; 0 unless a profile run failed or a figure could not
    be measured (a MISS is reported, not asserted)."""
    options = _parser().parse_args(argv)
    before = machine()
    print(f"load average {before['loadavg']} on {before['cpus']} CPUs", flush=True)
    report: dict[str, Any] = {
        "schema": "socketserver-conformance/benchmark", "version": 2, "machine": before,
        "figures": {}, "target_seconds": TARGET_SECONDS, "summary": {}, "runs": {}}

    def save(figures: dict[str, dict[str, Any]]) -> None:
        report.update(generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      loadavg_after=machine()["loadavg"], figures=figures)
        options.report_dir.mkdir(parents=True, exist_ok=True)
        (options.report_dir / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")

    figures = {} if options.only == "profiles" else measure_figures(options, save)
    runs = {} if options.only == "figures" else time_profiles(options)
    results = {profile: summarize(profile_runs) for profile, profile_runs in runs.items()}
    report.update(summary=results, runs=runs)
    save(figures)
    if figures:
        print("\n".join([*figures_table(figures), *figure_notes(figures)]))
    if results:
        print_profiles(results)
    print(f"load average before {before['loadavg']}, after {report['loadavg_after']}; "
          f"{report['generated']}")
    print(f"report: {options.report_dir / 'benchmark.json'}")
    failed = any(summary["failed_runs"] for summary in results.values())
    return 1 if failed or any(f["verdict"] == "ERROR" for f in figures.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
