"""Figures 1, 2 and 4 of ``tox -e bench``: whole runs of the kit (or of its self-tests) in a
subprocess, timed from outside and judged from the results.json files they leave.

1. catalog: one kit run with the stdlib and every broken and misbehaving fixture as targets
   side by side; each target's catalog time is the sum of its cases' ``duration``, and each
   must be within 2x of the stdlib's.
2. stopped: a thorough-profile run against the stdlib, sent SIGTERM after 60 s as a CI
   job's timeout would; its results.json must parse and list every contract that finished
   with all of that contract's cases (a run that ends by itself before then is a MISS).
4. selftest: ``python -m pytest tests -n auto`` as ``tox -e selftest``
   runs it, within 10 minutes (only with --selftest: it takes that long).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BROKEN = ROOT / "fixtures" / "broken"
MISBEHAVING = ROOT / "fixtures" / "misbehaving"
# A misbehaving fixture that cannot be a target: the kit refuses the whole run (exit 2).
UNLOADABLE = ("import_fails.py",)
STDLIB = "socketserver"
# The stdlib under another name, the catalog run's first target (see catalog_targets()).
WARMUP = Path(__file__).resolve().parent / "stdlib_warmup.py"
CATALOG_RATIO = 2.0
STOP_AFTER = 60.0
SELFTEST_MINUTES = 10.0
CI_MINUTES = 15.0
# After SIGTERM, how long a run may take to write its reports and exit before it is killed.
GRACE = 60.0


@dataclass
class Finished:
    """How a subprocess run ended: exit status, wall and CPU seconds (of it and every
    descendant it reaped), and whether the benchmark had to stop it."""

    code: int | None
    seconds: float
    cpu_seconds: float
    terminated_at: float | None = None
    exited_after_term: float | None = None
    killed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "seconds": round(self.seconds, 2),
                "cpu_seconds": round(self.cpu_seconds, 2),
                "terminated_at": self.terminated_at,
                "exited_after_term": (None if self.exited_after_term is None
                                      else round(self.exited_after_term, 2)),
                "killed": self.killed}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], *, cwd: Path, log: Path, term_after: float,
        env: dict[str, str] | None = None) -> Finished:
    """Run ``command`` (with ``env`` added to this environment) and its output in ``log``;
    at ``term_after`` seconds send it SIGTERM (as ``timeout -s TERM`` does), and SIGKILL its
    whole process group if it is still there GRACE seconds later. If this process is
    interrupted meanwhile (Ctrl-C, or a signal handler that raises), the run is stopped the
    same way before the exception goes on: no run outlives its caller."""
    env = {**os.environ, **(env or {})}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        finished = Finished(None, 0.0, 0.0)
        try:
            finished.code = process.wait(term_after)
        except subprocess.TimeoutExpired:
            finished.terminated_at = term_after
            _stop(process, finished)
        except BaseException:
            _stop(process, finished)
            raise
    finished.seconds = time.perf_counter() - started
    finished.cpu_seconds = _children_cpu() - cpu_before
    return finished


def _stop(process: subprocess.Popen[bytes], finished: Finished) -> None:
    """SIGTERM, so that the kit writes its reports and stops its harnesses; SIGKILL to the
    whole process group GRACE seconds later (or at once if this wait is interrupted)."""
    process.send_signal(signal.SIGTERM)
    termed = time.perf_counter()
    try:
        finished.code = process.wait(GRACE)
        finished.exited_after_term = time.perf_counter() - termed
    except subprocess.TimeoutExpired:
        finished.killed = True
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            finished.code = process.wait()


def kit_command(impls: list[str], *, profile: str, workers: str, report_dir: Path,
                contracts: list[str] = ()) -> list[str]:
    command = [sys.executable, "-m", "conformance"]
    for impl in impls:
        command += ["--impl", impl]
    for pattern in contracts:
        command += ["--contract", pattern]
    return [*command, "--hypothesis-profile", profile, "-n", workers,
            "--report-dir", str(report_dir)]


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _load(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """results.json as parsed, or None and why not."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, "no results.json"
    except (OSError, ValueError) as exc:
        return None, f"results.json does not parse: {exc}"


# Figure 1 -------------------------------------------------------------------------------

def catalog_targets(only: list[str] = ()) -> list[tuple[str, str, str]]:
    """(report name, --impl, kind) of every target of figure 1, in the run's order: the
    warm-up copy of the stdlib, the first half of the fixtures, the stdlib, the rest. With
    ``only``, just the fixtures whose stem starts with one of those words (development).

    The targets run in this order, each on every worker: the first one's tests are each
    worker's first and take its start-up, and the stdlib, the reference, runs mid-run
    under the same load as the fixtures around it."""
    fixtures = [(path, "broken") for path in sorted(BROKEN.glob("[!_]*.py"))]
    fixtures += [(path, "misbehaving") for path in sorted(MISBEHAVING.glob("[!_]*.py"))
                 if path.name not in UNLOADABLE]
    chosen = [(path.stem, str(path), kind) for path, kind in fixtures
              if not only or path.stem.startswith(tuple(only))]
    half = len(chosen) // 2
    return [(WARMUP.stem, str(WARMUP), "warm-up"), *chosen[:half],
            ("stdlib", STDLIB, "stdlib"), *chosen[half:]]


def catalog_seconds(results: dict[str, Any]) -> float:
    """A target's catalog time: the sum of its cases' durations (setup, call, teardown)."""
    return sum(case.get("duration") or 0.0 for contract in results.get("contracts", [])
               for case in contract.get("cases", []))


def _target_row(name: str, impl: str, kind: str, report_dir: Path) -> dict[str, Any]:
    results, problem = _load(report_dir / name / "results.json")
    if results is None:
        return {"name": name, "impl": impl, "kind": kind, "seconds": None, "problem": problem}
    summary = results.get("summary", {})
    return {"name": name, "kind": kind, "impl": os.path.relpath(impl, ROOT)
            if os.path.isabs(impl) else impl,
            "seconds": round(catalog_seconds(results), 2),
            "complete": results.get("complete"),
            "cases": sum(len(c.get("cases", [])) for c in results.get("contracts", [])),
            "outcomes": {key: value for key, value in summary.items() if value}}


def catalog_figure(report_dir: Path, *, profile: str, workers: str, timeout: float,
                   only: list[str] = (), contracts: list[str] = ()) -> dict[str, Any]:
    """One kit run with every target side by side; each target's catalog time against the
    stdlib's."""
    folder = _fresh(report_dir / "catalog-run")
    targets = catalog_targets(only)
    command = kit_command([impl for _, impl, _ in targets], profile=profile, workers=workers,
                          report_dir=folder / "reports", contracts=contracts)
    load_before = loadavg()
    finished = run(command, cwd=folder, log=folder / "kit.log", term_after=timeout)
    rows = [_target_row(name, impl, kind, folder / "reports") for name, impl, kind in targets]
    stdlib = next(row for row in rows if row["kind"] == "stdlib")["seconds"]
    for row in rows:
        row["ratio"] = (round(row["seconds"] / stdlib, 2)
                        if stdlib and row.get("seconds") is not None else None)
    judged = [row for row in rows if row["kind"] in ("broken", "misbehaving")]
    worst = max((row for row in judged if row["ratio"] is not None),
                key=lambda row: row["ratio"], default=None)
    incomplete = [row["name"] for row in rows if not row.get("complete")]
    over = [row["name"] for row in judged if row["ratio"] is None or row["ratio"] > CATALOG_RATIO]
    verdict = "PASS" if worst and not over and not incomplete else "MISS"
    measured = (f"worst {worst['name']} {worst['ratio']:.2f}x "
                f"(stdlib {stdlib:.0f}s, {len(judged)} targets)" if worst else "no ratio")
    return {
        "figure": "catalog", "title": "whole catalog per target vs the stdlib's time",
        "measured": measured + (f"; {len(incomplete)} incomplete" if incomplete else ""),
        "target": f"each <= {CATALOG_RATIO:g}x", "verdict": verdict,
        "details": {"command": _shown(command), "profile": profile, "workers": workers,
                    "contracts": list(contracts) or None,
                    "run": finished.to_json(), "loadavg_before": load_before,
                    "loadavg_after": loadavg(), "stdlib_seconds": stdlib,
                    "worst": worst and {"name": worst["name"], "ratio": worst["ratio"]},
                    "over_target": over, "incomplete": incomplete, "targets": rows,
                    "log": str(folder / "kit.log")},
    }


def _shown(command: list[str]) -> str:
    """The command as one line, with this checkout's paths relative and the interpreter
    as ``python``."""
    words = ["python" if word == sys.executable else
             os.path.relpath(word, ROOT) if os.path.isabs(word) else word
             for word in command]
    return " ".join(words)


# Figure 2 -------------------------------------------------------------------------------

def stopped_figure(report_dir: Path, *, profile: str, workers: str,
                   stop_after: float = STOP_AFTER) -> dict[str, Any]:
    """A run stopped from outside after ``stop_after`` seconds: does its results.json
    parse, and list every finished contract with all its cases?"""
    folder = _fresh(report_dir / "stopped-run")
    command = kit_command([STDLIB], profile=profile, workers=workers,
                          report_dir=folder / "reports")
    finished = run(command, cwd=folder, log=folder / "kit.log", term_after=stop_after)
    results, problem = _load(folder / "reports" / "stdlib" / "results.json")
    details: dict[str, Any] = {"command": _shown(command), "stop_after": stop_after,
                               "run": finished.to_json(), "log": str(folder / "kit.log")}
    if results is None:
        return {"figure": "stopped", "title": f"results.json after SIGTERM at {stop_after:g}s",
                "measured": problem, "target": "parses, lists finished contracts whole",
                "verdict": "MISS", "details": details}
    details.update(check_stopped(results))
    # A run that ended by itself before the signal shows nothing about being stopped.
    verdict = ("PASS" if finished.terminated_at is not None and not details["missing_cases"]
               and not details["unaccounted"] else "MISS")
    when = (f"SIGTERM at {stop_after:g}s" if finished.terminated_at is not None
            else f"ended by itself at {finished.seconds:.0f}s")
    return {
        "figure": "stopped", "title": f"results.json after SIGTERM at {stop_after:g}s",
        "measured": (f"parses; complete: {json.dumps(results.get('complete'))}, "
                     f"{details['finished']} contracts finished, "
                     f"{details['unfinished_contracts']} unfinished ({when})"
                     + (f"; {len(details['unaccounted'])} of {details['catalog_contracts']} "
                        "contracts in neither" if details["unaccounted"] else "")),
        "target": "parses, lists finished contracts whole", "verdict": verdict,
        "details": details,
    }


def check_stopped(results: dict[str, Any]) -> dict[str, Any]:
    """What a stopped run's results.json says, checked against the catalog: every listed
    contract that is not in ``unfinished`` has a case on each of its server classes, and
    every contract of the catalog is either finished or unfinished."""
    from conformance.contracts.catalog import catalog

    servers = {contract.id: set(contract.servers) for contract in catalog()}
    unfinished = {entry["id"]: entry.get("servers", []) for entry in results["unfinished"]}
    listed = {contract["id"]: {case["server"] for case in contract.get("cases", [])}
              for contract in results["contracts"]}
    finished = [cid for cid in listed if cid not in unfinished]
    missing = {cid: sorted(servers.get(cid, set()) - listed[cid]) for cid in finished
               if servers.get(cid, set()) - listed[cid]}
    unaccounted = sorted(set(servers) - set(finished) - set(unfinished))
    return {"complete": results.get("complete"), "stopped": results.get("stopped"),
            "finished": len(finished), "unfinished_contracts": len(unfinished),
            "unfinished_cases": sum(len(s) for s in unfinished.values()),
            "catalog_contracts": len(servers), "finished_contracts": sorted(finished),
            "missing_cases": missing, "unaccounted": unaccounted}


# Figure 4 -------------------------------------------------------------------------------

SELFTEST_COMMAND = ["-m", "pytest", "tests", "-n", "auto"]


def selftest_figure(report_dir: Path, *, timeout: float) -> dict[str, Any]:
    """``tox -e selftest``'s command, timed, against its 10 minutes."""
    folder = _fresh(report_dir / "selftest-run")
    command = [sys.executable, *SELFTEST_COMMAND]
    finished = run(command, cwd=ROOT, log=folder / "pytest.log", term_after=timeout)
    minutes = finished.seconds / 60
    tail = (folder / "pytest.log").read_text(errors="replace").strip().splitlines()[-1:]
    passed = finished.code == 0
    verdict = "PASS" if passed and minutes <= SELFTEST_MINUTES else "MISS"
    notes = []
    if not _importable("playwright"):
        notes.append("playwright missing: the browser self-test skipped")
    return {
        "figure": "selftest", "title": "tox -e selftest (python -m pytest tests -n auto)",
        "measured": f"{minutes:.1f} min, exit {finished.code}"
                    + (f" ({'; '.join(notes)})" if notes else ""),
        "target": f"<= {SELFTEST_MINUTES:g} min; .ci/run <= {CI_MINUTES:g} min (not measured)",
        "verdict": verdict,
        "details": {"command": _shown(command), "run": finished.to_json(),
                    "summary": tail[0] if tail else None, "notes": notes,
                    "log": str(folder / "pytest.log")},
    }


def selftest_not_measured() -> dict[str, Any]:
    return {"figure": "selftest", "title": "tox -e selftest; .ci/run",
            "measured": "not measured (run with --selftest)",
            "target": f"<= {SELFTEST_MINUTES:g} min; .ci/run <= {CI_MINUTES:g} min",
            "verdict": "-", "details": None}


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def loadavg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
