"""Gathers contract results on the controller and keeps the reports current as it goes.

results.json and junit.xml are rewritten each time a contract's last case finishes (and at
the end), each by an atomic rename, so that a run stopped from outside (a CI job's timeout,
Ctrl-C, SIGKILL) leaves valid reports of what finished, naming what did not."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.contracts.catalog import Contract, catalog
from conformance.coverage.measurement import Measurement
from conformance.coverage.report import report
from conformance.expectations import FAILED, PASSED, Baseline, dump, updated
from conformance.reporting.junit import write_junit
from conformance.reporting.results import Case, RunResults
from conformance.reporting.terminal import verdict_lines
from conformance.stopping import NOT_RUN


@dataclass
class _TargetReport:
    """What the run found about one target, and where its reports go."""

    results: RunResults
    folder: str
    # The baseline to rewrite from this run (--update-expectations), or None.
    baseline: Baseline | None
    # Each contract's server classes, when not the catalog's (--server-class).
    servers_of: dict[str, tuple[str, ...]] | None = None
    # --coverage: the interpreter whose coverage.py makes the reports, and what its
    # harnesses measured.
    measured: tuple[str, Measurement] | None = None
    written: bool = False

    def write(self) -> None:
        self.results.write(os.path.join(self.folder, "results.json"))
        write_junit(self.results, os.path.join(self.folder, "junit.xml"))
        self.written = True

    def update_expectations(self, baseline: Baseline) -> None:
        observed = {(result.contract.id, case.server): _observed(case)
                    for result in self.results.sorted_results() for case in result.cases}
        version = self.results.target.get("python_version") or "0"
        new = updated(baseline, observed, version, contracts=self.servers_of)
        os.makedirs(os.path.dirname(new.path) or ".", exist_ok=True)
        with open(new.path, "w", encoding="utf-8") as out:
            out.write(dump(new, self.results.target["name"]))

    def report_coverage(self, cwd: str) -> None:
        """Combine what the harnesses measured and make coverage.py's reports (paths
        shown relative to ``cwd``): once, at the end, when every harness has saved its
        data."""
        if self.measured is None:
            return
        interpreter, measurement = self.measured
        self.results.coverage = report(interpreter, measurement, self.folder,
                                       f"{self.results.target['name']}: coverage by the "
                                       "socketserver conformance kit", cwd)

    def summary_lines(self) -> list[tuple[str, dict[str, bool]]]:
        lines = verdict_lines(self.results)
        lines.append((f"reports: {_shown(self.folder)}/{{results.json,junit.xml}}", {}))
        if self.results.target.get("workarounds"):
            lines.append(("harness workarounds (the target's own defects, see "
                          "conformance/harness/agent/workarounds.py): "
                          + ", ".join(self.results.target["workarounds"]), {}))
        if self.results.coverage is not None:
            lines.append((self.results.coverage.summary_line(_shown), {}))
        used = self.results.baseline
        lines.append(("baseline: " + (f"{_shown(used.path)} (sha256 {used.sha256[:12]})"
                                      if used else "none"), {}))
        if self.baseline is not None:
            lines.append((f"expectations rewritten: {_shown(self.baseline.path)}", {}))
        return lines


class ResultsCollector:
    """A pytest plugin object living on the controller (or the only process).

    Reads the phases that contract tests attach to their reports under
    ``user_property``, per target (``add_target``); keeps each target's results.json and
    junit.xml current, rewrites an expectations baseline when asked, and prints the
    verdicts."""

    def __init__(self, config: pytest.Config, user_property: str) -> None:
        self.config = config
        self.user_property = user_property
        self._targets: dict[str, _TargetReport] = {}
        self._not_run: set[str] = set()
        self._expected = False

    def add_target(self, label: str, results: RunResults, baseline: Baseline | None,
                   servers_of: dict[str, tuple[str, ...]] | None = None) -> None:
        """Report on the target tests know by ``label``; rewrite ``baseline`` at the end
        (``servers_of``: each contract's server classes, when not the catalog's)."""
        folder = os.path.join(str(self.config.invocation_params.dir),
                              self.config.getoption("report_dir"), results.target["name"])
        self._targets[label] = _TargetReport(results, folder, baseline, servers_of)

    def folder(self, label: str) -> str:
        """The folder of the reports on the target tests know by ``label``."""
        return self._targets[label].folder

    def measure(self, label: str, interpreter: str, measurement: Measurement) -> None:
        """Report, at the end, what the harnesses of this target measured (--coverage),
        with the coverage.py of ``interpreter``."""
        self._targets[label].measured = (interpreter, measurement)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Without xdist: this process collected the tests it will run.
        if not hasattr(self.config, "workerinput"):
            self._expect(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        # With xdist: every worker collects the same tests; the first to report says which.
        if not self._expected:
            self._expect(ids)

    def _expect(self, nodeids: Iterable[str]) -> None:
        self._expected = True
        tests = {contract.test_name: contract for contract in catalog()}
        several = len(self._targets) > 1
        for nodeid in nodeids:
            name, _, param = nodeid.rpartition("::")[2].partition("[")
            if name not in tests:
                continue
            # Server class names have no "-": with several targets, the label follows one.
            server, _, label = param.rstrip("]").partition("-")
            target = self._targets[label] if several else next(iter(self._targets.values()))
            target.results.expect(tests[name], server)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name != self.user_property:
                continue
            target = self._targets[value["label"]]
            if report.nodeid in self._not_run or NOT_RUN in (value.get("message") or ""):
                # Held back by --max-time: listed as unfinished, not as a verdict.
                self._not_run.add(report.nodeid)
                target.results.stopped = "max-time"
                continue
            contract = Contract(**value["contract"])
            target.results.add(contract, value)
            if report.when == "teardown" and target.results.finished(contract.id):
                target.write()

    def pytest_keyboard_interrupt(self) -> None:
        for target in self._targets.values():
            target.results.stopped = "interrupted"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        unfinished = False
        for target in self._targets.values():
            results = target.results
            if not results.contracts and not results.expected and results.stopped is None:
                # No contract test in this session (pytest run for something else). A run
                # stopped before it had collected its tests still says so.
                continue
            target.report_coverage(str(self.config.invocation_params.dir))
            target.write()
            if target.baseline is not None:
                target.update_expectations(target.baseline)
            unfinished = unfinished or bool(results.unfinished())
        if unfinished and session.exitstatus in (pytest.ExitCode.OK,
                                                 pytest.ExitCode.INTERRUPTED):
            # Not every contract was shown to hold: the run failed (2 is bad usage).
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        written = [target for target in self._targets.values() if target.written]
        if not written:
            return
        terminalreporter.section("socketserver conformance")
        for index, target in enumerate(written):
            if index:
                terminalreporter.line("")
            for text, markup in target.summary_lines():
                terminalreporter.line(text, **markup)


def _observed(case: Case) -> str:
    """What --update-expectations reads from a case: an expected failure still failed, an
    unexpected pass passed."""
    if case.xpassed:
        return PASSED
    return FAILED if case.outcome in ("failed", "xfailed") else case.outcome


def _shown(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative
