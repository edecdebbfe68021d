"""How long the kit takes against the standard library, and how much memory it needs.

Runs ``python -m conformance`` (the stdlib target, with the ``-n`` of ``tox -e stdlib``) end to end
under each Hypothesis profile asked for (``dev``, the local default, and ``ci``, what CI
runs), N times each, every run in a fresh temporary folder so that no example database
carries over. For each run it records the wall-clock time and the peak resident memory of
the largest process of the run (the kit's pytest process, the harness, or a forked server
child): ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by a small wrapper process
that runs only that one kit, so that runs do not share a high-water mark. It also records
the CPU time of the whole run (user and system), which tells waiting (bounded waits,
sleeps) from computing. ``--profile quick`` (or ``thorough``) and ``--workers N`` time other
runs, e.g. ``--profile quick --workers 3 -n 1`` for a quick look at a change.

Prints median, min and max per profile and writes ``benchmark.json`` to the report folder
(``reports/benchmark``). The project's target, "tox -e stdlib completes within about a
minute on a 2-core machine", is reported against, never asserted: the numbers depend on
the machine and on whatever else it is running, so the load average is recorded too.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("dev", "ci")
# Profiles that can be timed on request: quick for a first look, thorough for the long runs.
PROFILE_CHOICES = ("quick", "dev", "ci", "thorough")
# How many of the slowest contracts the summary names.
SLOWEST = 5
TARGET_SECONDS = 60.0
RUN_TIMEOUT = 900.0
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
                        help="the kit's -n (default: that of tox -e stdlib)")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT, metavar="SECONDS",
                        help=f"stop a run after this long (default: {RUN_TIMEOUT:g})")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "reports" / "benchmark",
                        help="where benchmark.json goes")
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
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> int:
    """Time every profile; 0 when every run passed, 1 when any run failed or was stopped."""
    options = _parser().parse_args(argv)
    profiles = options.profile or list(PROFILES)
    before = machine()
    runs: dict[str, list[dict[str, Any]]] = {}
    for profile in profiles:
        runs[profile] = []
        for number in range(1, options.repeat + 1):
            run = measure(profile, options.timeout, options.workers)
            runs[profile].append(run)
            print(f"{profile} run {number}/{options.repeat}: {run['seconds']:.1f}s, "
                  f"exit {run['code']}, CPU {run['cpu_seconds']}s "
                  f"(user {run['user_seconds']}s, sys {run['sys_seconds']}s), "
                  f"peak RSS {run['maxrss_mib']} MiB", flush=True)
    results = {profile: summarize(profile_runs) for profile, profile_runs in runs.items()}
    report = {"schema": "socketserver-conformance/benchmark", "version": 1,
              "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": before, "loadavg_after": machine()["loadavg"],
              "target_seconds": TARGET_SECONDS, "summary": results, "runs": runs}
    options.report_dir.mkdir(parents=True, exist_ok=True)
    (options.report_dir / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(table(results)))
    for profile, summary in results.items():
        named = ", ".join(f"{contract_id} {seconds:g}s"
                          for contract_id, seconds in summary["slowest_contracts"].items())
        print(f"slowest contracts ({profile}, median s): {named or '-'}")
    print(verdict(results))
    print(f"report: {options.report_dir / 'benchmark.json'}")
    return 0 if all(summary["failed_runs"] == 0 for summary in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
