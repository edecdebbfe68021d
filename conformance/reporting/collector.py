"""Gathers contract results on the controller and writes every report once, at the end."""

from __future__ import annotations

import os
from typing import Any

import pytest

from conformance.contracts.catalog import Contract
from conformance.expectations import FAILED, PASSED, Baseline, dump, updated
from conformance.reporting.junit import write_junit
from conformance.reporting.results import Case, RunResults
from conformance.reporting.terminal import verdict_lines


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
        self.folder: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == self.user_property:
                self.results.add(Contract(**value["contract"]), value)

    def pytest_sessionfinish(self) -> None:
        if not self.results.contracts:
            return
        self.folder = os.path.join(str(self.config.invocation_params.dir),
                                   self.config.getoption("report_dir"),
                                   self.results.target["name"])
        self.results.write(os.path.join(self.folder, "results.json"))
        write_junit(self.results, os.path.join(self.folder, "junit.xml"))
        if self.baseline is not None:
            self._update_expectations(self.baseline)

    def _update_expectations(self, baseline: Baseline) -> None:
        observed = {(result.contract.id, case.server): _observed(case)
                    for result in self.results.sorted_results() for case in result.cases}
        version = self.results.target.get("python_version") or "0"
        new = updated(baseline, observed, version)
        os.makedirs(os.path.dirname(new.path) or ".", exist_ok=True)
        with open(new.path, "w", encoding="utf-8") as out:
            out.write(dump(new, self.results.target["name"]))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.folder is None:
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
