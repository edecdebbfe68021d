"""Gathers contract results on the controller and keeps the reports current as it goes.

results.json and junit.xml are rewritten each time a contract's last case finishes (and at
the end), each by an atomic rename, so that a run stopped from outside (a CI job's timeout,
Ctrl-C, SIGKILL) leaves valid reports of what finished, naming what did not."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pytest

from conformance.contracts.catalog import Contract, catalog
from conformance.expectations import FAILED, PASSED, Baseline, dump, updated
from conformance.reporting.junit import write_junit
from conformance.reporting.results import Case, RunResults
from conformance.reporting.terminal import verdict_lines
from conformance.stopping import NOT_RUN


class ResultsCollector:
    """A pytest plugin object living on the controller (or the only process).

    Reads the phases that contract tests attach to their reports under
    ``user_property``; at the end writes results.json and junit.xml, rewrites the
    expectations ``baseline`` when one is given, and prints the verdict."""

    def __init__(self, config: pytest.Config, results: RunResults, user_property: str,
                 baseline: Baseline | None) -> None:
        self.config = config
        self.results = results
        self.user_property = user_property
        self.baseline = baseline
        self.folder = os.path.join(str(config.invocation_params.dir),
                                   config.getoption("report_dir"), results.target["name"])
        self._written = False
        self._not_run: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Without xdist: this process collected the tests it will run.
        if not hasattr(self.config, "workerinput"):
            self._expect(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # With xdist: every worker collects the same tests; the first to report says which.
        if not self.results.expected:
            self._expect(ids)

    def _expect(self, nodeids: Iterable[str]) -> None:
        tests = {contract.test_name: contract for contract in catalog()}
        for nodeid in nodeids:
            name, _, param = nodeid.rpartition("::")[2].partition("[")
            if name in tests:
                self.results.expect(tests[name], param.rstrip("]"))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name != self.user_property:
                continue
            if report.nodeid in self._not_run or NOT_RUN in (value.get("message") or ""):
                # Held back by --max-time: listed as unfinished, not as a verdict.
                self._not_run.add(report.nodeid)
                self.results.stopped = "max-time"
                continue
            contract = Contract(**value["contract"])
            self.results.add(contract, value)
            if report.when == "teardown" and self.results.finished(contract.id):
                self._write()

    def pytest_keyboard_interrupt(self) -> None:
        self.results.stopped = "interrupted"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not self.results.contracts and not self.results.stopped:
            return
        self._write()
        if self.baseline is not None:
            self._update_expectations(self.baseline)
        if self.results.unfinished() and session.exitstatus in (pytest.ExitCode.OK,
                                                                 pytest.ExitCode.INTERRUPTED):
            # Not every contract was shown to hold: the run failed (2 is bad usage).
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _write(self) -> None:
        self.results.write(os.path.join(self.folder, "results.json"))
        write_junit(self.results, os.path.join(self.folder, "junit.xml"))
        self._written = True

    def _update_expectations(self, baseline: Baseline) -> None:
        observed = {(result.contract.id, case.server): _observed(case)
                    for result in self.results.sorted_results() for case in result.cases}
        version = self.results.target.get("python_version") or "0"
        new = updated(baseline, observed, version)
        os.makedirs(os.path.dirname(new.path) or ".", exist_ok=True)
        with open(new.path, "w", encoding="utf-8") as out:
            out.write(dump(new, self.results.target["name"]))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self._written:
            return
        terminalreporter.section("socketserver conformance")
        for text, markup in verdict_lines(self.results):
            terminalreporter.line(text, **markup)
        terminalreporter.line(f"reports: {_shown(self.folder)}/{{results.json,junit.xml}}")
        used = self.results.baseline
        terminalreporter.line("baseline: " + (f"{_shown(used.path)} (sha256 {used.sha256[:12]})"
                                              if used else "none"))
        if self.baseline is not None:
            terminalreporter.line(f"expectations rewritten: {_shown(self.baseline.path)}")


def _observed(case: Case) -> str:
    """What --update-expectations reads from a case: an expected failure still failed, an
    unexpected pass passed."""
    if case.xpassed:
        return PASSED
    return FAILED if case.outcome in ("failed", "xfailed") else case.outcome


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative
