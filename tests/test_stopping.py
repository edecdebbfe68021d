"""A run cut short still reports: what finished, what did not, and why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.reporting.collector import ResultsCollector
from conformance.reporting.results import RunResults
from tests.conftest import RUN_MARKER, leftover_processes

# How long the outside stop waits for the first contract to finish before it stops the run.
FIRST_REPORT = 120.0
# Stopped, the kit ends (and its harnesses with it) within this.
STOPPED = 60.0


def _finished_cases_are_whole(results: dict) -> None:
    """Every contract the report lists has all of its selected cases: none is half there."""
    unfinished = {entry["id"] for entry in results["unfinished"]}
    for contract in results["contracts"]:
        if contract["id"] not in unfinished:
            assert contract["cases"], contract["id"]


def test_max_time_holds_back_the_rest_and_names_it(run_kit) -> None:
    run = run_kit("--max-time", "2", "--contract", "handler.*", "--contract", "echo.*")
    assert run.code == 1, run.stdout + run.stderr
    results = run.results("stdlib")
    assert results["complete"] is False
    assert results["stopped"] == "max-time"
    assert results["unfinished"], results
    assert "not finished (--max-time passed)" in run.stdout
    _finished_cases_are_whole(results)


def test_a_run_stopped_from_outside_leaves_a_valid_report(tmp_path: Path) -> None:
    report_dir = tmp_path / "reports"
    marker = uuid.uuid4().hex
    env = {**os.environ, RUN_MARKER: marker}
    env.pop("PYTEST_XDIST_WORKER", None)
    kit = subprocess.Popen(
        [sys.executable, "-m", "conformance", "--report-dir", str(report_dir),
         "--hypothesis-profile", "quick", "-n", "2"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    path = report_dir / "stdlib" / "results.json"
    try:
        deadline = time.monotonic() + FIRST_REPORT
        while not path.exists() and time.monotonic() < deadline and kit.poll() is None:
            time.sleep(0.2)
        assert path.exists(), "no contract finished before the stop"
        # As `timeout` and CI systems stop a job: SIGTERM to the kit's own process.
        kit.send_signal(signal.SIGTERM)
        kit.wait(STOPPED)
    finally:
        if kit.poll() is None:
            os.killpg(kit.pid, signal.SIGKILL)
            kit.wait(STOPPED)
    results = json.loads(path.read_text(encoding="utf-8"))
    assert results["complete"] is False
    assert results["stopped"] == "interrupted"
    assert results["contracts"] and results["unfinished"]
    _finished_cases_are_whole(results)
    assert (report_dir / "stdlib" / "junit.xml").is_file()
    deadline = time.monotonic() + STOPPED
    while leftover_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leftover_processes(marker)


def test_a_run_stopped_before_it_collected_its_tests_still_reports(tmp_path: Path) -> None:
    # SIGTERM in the first seconds, before the tests are collected: nothing finished,
    # and the report says that rather than being absent.
    config = SimpleNamespace(invocation_params=SimpleNamespace(dir=tmp_path),
                             getoption=lambda name: "reports")
    collector = ResultsCollector(config, "conformance")
    collector.add_target("stdlib", RunResults(target={"name": "stdlib"}), None)
    collector.pytest_keyboard_interrupt()
    session = SimpleNamespace(exitstatus=pytest.ExitCode.INTERRUPTED)
    collector.pytest_sessionfinish(session)
    folder = tmp_path / "reports" / "stdlib"
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert results["complete"] is False
    assert results["stopped"] == "interrupted"
    assert results["contracts"] == [] and results["unfinished"] == []
    assert (folder / "junit.xml").is_file()
    assert session.exitstatus == pytest.ExitCode.INTERRUPTED
