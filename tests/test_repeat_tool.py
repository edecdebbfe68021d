"""tools/repeat.py: its comparison of runs' verdicts, and the tool run as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import KIT_TIMEOUT, RUN_MARKER, leftover_processes

TOOLS = Path(__file__).resolve().parent.parent / "tools"
# The tool, stopped from outside, ends (its run and its load with it) within this.
STOPPED = 90.0


def _repeat_module() -> ModuleType:
    # The tools import each other as scripts do, from their own folder.
    sys.path.insert(0, str(TOOLS))
    try:
        spec = importlib.util.spec_from_file_location("repeat_tool", TOOLS / "repeat.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        # Its dataclasses look their module up there.
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(TOOLS))


repeat = _repeat_module()


def _results(cases: dict[tuple[str, str], str], *,
             messages: dict[tuple[str, str], str] | None = None,
             unfinished: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """A results.json as the kit writes it, with these cases' outcomes."""
    messages, unfinished = messages or {}, unfinished or {}
    contracts: dict[str, list[dict[str, Any]]] = {}
    for (contract, server), outcome in cases.items():
        contracts.setdefault(contract, []).append(
            {"server": server, "outcome": outcome, "message": messages.get((contract, server))})
    return {"contracts": [{"id": cid, "cases": found} for cid, found in contracts.items()],
            "unfinished": [{"id": cid, "servers": servers} for cid, servers in unfinished.items()],
            "complete": not unfinished}


ECHO = ("echo.upper", "TCPServer")
CLOSE = ("lifecycle.server_close", "ForkingTCPServer")
PASSING = _results({ECHO: "passed", CLOSE: "passed"})


def test_the_same_verdicts_in_every_run_are_stable() -> None:
    comparison = repeat.compare([PASSING, PASSING, _results({ECHO: "passed", CLOSE: "passed"})])
    assert comparison.stable
    assert (comparison.runs, comparison.cases, comparison.changed) == (3, 2, ())
    assert repeat.summary_line("stdlib", comparison, []) == (
        "3 runs of stdlib: 2 cases, 0 changed verdicts")


def test_a_changed_verdict_names_its_odd_runs_and_their_message() -> None:
    failing = _results({ECHO: "passed", CLOSE: "failed"},
                       messages={CLOSE: "server_close() did not return within 5s\nmore"})
    comparison = repeat.compare([PASSING, failing, PASSING, failing, PASSING])
    assert not comparison.stable
    [case] = comparison.changed
    assert (case.contract, case.server, case.usual) == (*CLOSE, "passed")
    assert dict(case.runs) == {"passed": (1, 3, 5), "failed": (2, 4)}
    assert case.odd == (repeat.OddOnes("failed", "server_close() did not return within 5s\nmore",
                                       (2, 4)),)
    assert repeat.changed_lines(comparison) == [
        "CHANGED  lifecycle.server_close  ForkingTCPServer: passed 3, failed 2",
        "         runs 2, 4 failed: server_close() did not return within 5s"]
    assert json.loads(json.dumps(case.to_json()))["odd"][0]["runs"] == [2, 4]


def test_on_a_tie_the_first_run_gives_the_usual_verdict() -> None:
    failing = _results({ECHO: "failed", CLOSE: "passed"}, messages={ECHO: "got b'A'"})
    [case] = repeat.compare([failing, PASSING]).changed
    assert case.usual == "failed"
    assert case.odd == (repeat.OddOnes("passed", None, (2,)),)
    assert case.counts() == "failed 1, passed 1"


def test_a_case_missing_from_a_run_is_absent_there_or_unfinished() -> None:
    stopped = _results({ECHO: "passed"}, unfinished={"lifecycle.server_close": [CLOSE[1]]})
    short = _results({ECHO: "passed"})
    comparison = repeat.compare([PASSING, stopped, short])
    [case] = comparison.changed
    assert (case.contract, case.server) == CLOSE
    assert dict(case.runs) == {"passed": (1,), "unfinished": (2,), "absent": (3,)}
    assert repeat.case_counts(stopped) == {"passed": 1, "unfinished": 1}


def test_a_run_without_results_is_named_not_compared() -> None:
    comparison = repeat.compare([PASSING, None, PASSING])
    assert (comparison.changed, comparison.without_results) == ((), (2,))
    assert not comparison.stable
    assert repeat.summary_line("gevent", comparison, [2]) == (
        "3 runs of gevent: 2 cases, 0 changed verdicts; timed out: run 2; "
        "no results.json: run 2")


def test_a_run_that_skipped_every_case_checked_nothing() -> None:
    unavailable = {"contracts": [{"id": "echo.upper", "cases": [
        {"server": "TCPServer", "outcome": "skipped",
         "message": "target gevent cannot run here: No module named 'gevent'"}]}]}
    assert repeat.nothing_checked(unavailable) == (
        "target gevent cannot run here: No module named 'gevent'")
    assert repeat.nothing_checked(PASSING) is None


def test_messages_are_shortened_to_one_line() -> None:
    assert repeat.shorten("  \nfirst   line\nsecond") == "first line"
    assert repeat.shorten(None) == "(no message)"
    assert repeat.shorten("x" * 200, width=20) == "x" * 17 + "..."


@pytest.mark.parametrize("kit_args", [["--", "-n", "2"], ["--", "--report-dir=x"],
                                      ["--kit-arg=--hypothesis-profile", "--kit-arg=dev"]])
def test_the_tools_own_options_are_refused_among_the_kits(kit_args: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        repeat.parse_args(["--times", "2", *kit_args])
    assert exited.value.code == 2


def _tool(folder: Path, *args: str, marker: str) -> subprocess.Popen[str]:
    env = {**os.environ, RUN_MARKER: marker}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.Popen(
        [sys.executable, str(TOOLS / "repeat.py"), "--report-dir", str(folder / "repeat"),
         "-n", "0", "--hypothesis-profile", "quick", *args],
        cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _no_leftovers(marker: str) -> None:
    deadline = time.monotonic() + STOPPED
    while leftover_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leftover_processes(marker)


def test_two_runs_of_one_contract_give_one_verdict(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    tool = _tool(tmp_path, "--impl", "socketserver", "--times", "2", "--",
                 "--contract", "echo.upper", "--server", "TCPServer", marker=marker)
    out, err = tool.communicate(timeout=KIT_TIMEOUT)
    assert tool.returncode == 0, out + err
    assert "2 runs of socketserver: 1 case, 0 changed verdicts" in out
    report = json.loads((tmp_path / "repeat" / "socketserver.json").read_text())
    assert (report["times"], report["cases"], report["stable"], report["changed"]) == (
        2, 1, True, [])
    assert [(run["code"], run["cases"], run["timed_out"]) for run in report["runs"]] == [
        (0, {"passed": 1}, False)] * 2
    assert report["cpus"] and report["loadavg_before"] and report["load"] is None
    _no_leftovers(marker)


def test_a_run_that_times_out_counts_as_such_under_load(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    # The whole catalog cannot finish in 3 s: the run gets SIGTERM.
    tool = _tool(tmp_path, "--times", "1", "--timeout", "3", "--load", "1", marker=marker)
    out, err = tool.communicate(timeout=KIT_TIMEOUT)
    assert tool.returncode == 1, out + err
    report = json.loads((tmp_path / "repeat" / "stdlib.json").read_text())
    assert report["timed_out"] == [1] and report["runs"][0]["terminated_at"] == 3
    assert report["load"]["processes"] == 1 and not report["stable"]
    assert "timed out: run 1" in out
    _no_leftovers(marker)


def test_the_tool_stopped_by_sigterm_leaves_nothing_running(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    tool = _tool(tmp_path, "--times", "3", "--load", "1", marker=marker)
    log = tmp_path / "repeat" / "stdlib-runs" / "run-1" / "kit.log"
    try:
        deadline = time.monotonic() + STOPPED
        while not log.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # the kit under way, its load besides
        tool.send_signal(signal.SIGTERM)
        out, err = tool.communicate(timeout=STOPPED)
    finally:
        if tool.poll() is None:
            tool.kill()
            tool.wait()
    assert tool.returncode == 128 + signal.SIGTERM, out + err
    assert "interrupted by SIGTERM" in err
    _no_leftovers(marker)
