"""The pytest plugin: target options, the harness and server fixtures, and the reports.

Registered through the ``pytest11`` entry point, so ``pytest --pyargs conformance.contracts
--impl mypkg.myserver -n auto`` works wherever the kit is installed. Workers run contract
tests and attach what they found to each test report; the controller (or the only process,
without xdist) gathers those into results.json, junit.xml and the terminal verdict.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.contracts.catalog import MARKER, SHOULD, Contract
from conformance.harness import Harness, HarnessError, ServedServer
from conformance.harness.process import is_datagram_class
from conformance.reporting.junit import write_junit
from conformance.reporting.results import RunResults
from conformance.reporting.terminal import verdict_lines
from conformance.targets import Target, TargetError

_POOL = pytest.StashKey["HarnessPool"]()
_USER_PROPERTY = "conformance"
_MESSAGE_LIMIT = 4000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "socketserver conformance")
    group.addoption("--impl", default=None, metavar="MODULE|FILE",
                    help="the implementation under test: a module name or a .py file "
                         "exposing the socketserver API (default: socketserver)")
    group.addoption("--python", default=None, metavar="INTERPRETER",
                    help="the interpreter that runs the implementation: a name on PATH or "
                         "a path (default: the one running pytest)")
    group.addoption("--prelude", default=None, metavar="MODULE:CALLABLE",
                    help="called in the harness before the implementation is imported, "
                         "e.g. gevent.monkey:patch_all")
    group.addoption("--report-dir", default="reports", metavar="DIR",
                    help="where results.json and junit.xml go, under DIR/<target>/ "
                         "(default: reports)")
    group.addoption("--contract", action="append", default=[], metavar="ID",
                    help="check only contracts whose id matches (glob; repeatable)")
    group.addoption("--server", action="append", default=[], metavar="CLASS",
                    help="check only on these server classes (repeatable)")
    group.addoption("--strict-should", action="store_true", default=False,
                    help="let failures of should-level contracts (stdlib behaviour the "
                         "documentation does not state) fail the run")


def target_from(config: pytest.Config) -> Target:
    """The target the options name."""
    return Target(impl=config.getoption("impl") or "socketserver",
                  python=config.getoption("python"), prelude=config.getoption("prelude"))


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(id): the test checks the socketserver contract with this id")
    # Hypothesis is imported here, not at plugin import, so that pytest can still rewrite
    # the asserts of Hypothesis' own plugin; tryfirst, so that the profiles are registered
    # before Hypothesis' plugin loads the one --hypothesis-profile names.
    from hypothesis import settings

    from conformance import profiles

    profiles.register()
    try:
        profile = _profile_name(config)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    settings.load_profile(profile)
    target = target_from(config)
    config.stash[_POOL] = HarnessPool(target)
    if _is_worker(config):
        return
    results = RunResults(target=target.describe(), profile=profile)
    config.pluginmanager.register(_ResultsCollector(config, results), "conformance-results")
    if any(config.getoption(name) for name in ("impl", "python", "prelude")):
        try:
            probe(target)
        except (TargetError, HarnessError) as exc:
            raise pytest.UsageError(str(exc)) from None


def _profile_name(config: pytest.Config) -> str:
    from conformance import profiles

    return config.getoption("hypothesis_profile", None) or profiles.default_name()


def probe(target: Target) -> dict[str, Any]:
    """Start the harness once: the target's interpreter runs, the prelude and import work."""
    target.check_syntax()
    harness = Harness(target)
    harness.close()
    return harness.hello


class HarnessPool:
    """The harness of this process, started on first use and replaced if it breaks."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._harness: Harness | None = None

    def get(self) -> Harness:
        if self._harness is not None and not self._harness.usable:
            self.discard()
        if self._harness is None:
            self._harness = Harness(self.target)
        return self._harness

    def discard(self) -> None:
        if self._harness is not None:
            self._harness.close()
            self._harness = None

    def describe(self) -> dict[str, Any]:
        """The target, with its interpreter's own account once the harness has started."""
        return self.target.describe(self._harness.hello if self._harness else None)


@pytest.fixture(scope="session")
def harness_pool(pytestconfig: pytest.Config) -> Iterator[HarnessPool]:
    """The harness running the target; one per pytest process (so one per xdist worker)."""
    pool = pytestconfig.stash[_POOL]
    yield pool
    pool.discard()


def _applicable_harness(request: pytest.FixtureRequest, pool: HarnessPool) -> Harness:
    """The harness, after skipping a contract that the target's Python version predates."""
    harness = pool.get()
    contract: Contract | None = getattr(request.node.function, "contract", None)
    if contract is not None and contract.since is not None:
        version = tuple(int(part) for part in harness.hello["python_version"].split(".")[:2])
        if version < tuple(contract.since):
            since = ".".join(map(str, contract.since))
            pytest.skip(f"not applicable: new in Python {since}, the target runs "
                        f"{harness.hello['python_version']}")
    return harness


@pytest.fixture
def harness(request: pytest.FixtureRequest, harness_pool: HarnessPool) -> Harness:
    """The running harness, for contracts about classes rather than running servers."""
    return _applicable_harness(request, harness_pool)


@pytest.fixture
def serve(request: pytest.FixtureRequest, harness_pool: HarnessPool,
          server_class: str) -> Iterator[Callable[..., ServedServer]]:
    """Start ``server_class`` servers of the target: ``serve(handler, **options)`` takes
    what Harness.start takes. Skips when the target has no such class. After the test every
    server is shut down and closed; a shutdown() or server_close() that does not return
    within 5s is an error."""
    started: list[ServedServer] = []

    def start(handler: str | dict[str, Any] | None = None, **options: Any) -> ServedServer:
        harness = _applicable_harness(request, harness_pool)
        if server_class not in harness.classes:
            pytest.skip(f"{harness_pool.target.name(harness.hello)} has no {server_class}")
        if handler is None:
            handler = "udp-echo" if is_datagram_class(server_class) else "echo"
        if "Unix" in server_class:
            options.setdefault("family", "unix")
        served = harness.start(server_class, handler, **options)
        started.append(served)
        return served

    yield start
    problems = []
    for served in started:
        if not served.harness.usable:
            break
        try:
            report = served.stop()
        except HarnessError:
            harness_pool.discard()
            raise
        problems += [f"{call}() did not return within 5s" if report[key] == "hung"
                     else f"{call}() {report[key]}"
                     for key, call in (("shutdown", "shutdown"), ("close", "server_close"))
                     if report[key] not in ("ok", "not serving")]
    if started and not started[0].harness.usable:
        harness_pool.discard()
    if problems:
        harness_pool.discard()
        pytest.fail(f"stopping {server_class}: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def server(serve: Callable[..., ServedServer]) -> ServedServer:
    """A ``server_class`` server of the target serving the reference handler: the
    documentation's uppercase echo (streams) or datagram reply (UDP)."""
    return serve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    patterns = config.getoption("contract")
    servers = set(config.getoption("server"))
    if not patterns and not servers:
        return
    selected, deselected = [], []
    for item in items:
        marker = item.get_closest_marker(MARKER)
        if marker is None:
            selected.append(item)
            continue
        server_class = _server_class(item)
        keep = (not patterns or any(fnmatch.fnmatchcase(marker.args[0], p) for p in patterns))
        keep = keep and (not servers or server_class in servers)
        (selected if keep else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def _server_class(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("server_class") if callspec is not None else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    contract: Contract | None = getattr(getattr(item, "function", None), "contract", None)
    if contract is not None:
        phase = _phase(item, call, report)
        if (contract.level == SHOULD and report.failed and report.when == "call"
                and not item.config.getoption("strict_should")):
            # A should-level failure is reported, but does not fail the run.
            report.outcome = "skipped"
            report.wasxfail = (f"{contract.id} is a should-level contract: reported, "
                               "not failing the run without --strict")
            phase["blocking"] = False
        report.user_properties.append((_USER_PROPERTY, phase))
    return report


def _phase(item: pytest.Item, call: pytest.CallInfo[None],
           report: pytest.TestReport) -> dict[str, Any]:
    """What one phase of a contract test found, in a form that survives xdist."""
    contract: Contract = item.function.contract  # type: ignore[attr-defined]
    phase: dict[str, Any] = {
        "contract": contract.__dict__.copy(),
        "server": _server_class(item),
        "nodeid": item.nodeid,
        "when": report.when,
        "duration": report.duration,
        "outcome": "passed",
        "target": item.config.stash[_POOL].describe(),
    }
    if hasattr(report, "wasxfail"):
        phase["outcome"] = "xfailed" if report.skipped else "passed"
        phase["message"] = report.wasxfail
    elif report.skipped:
        phase["outcome"] = "skipped"
        longrepr = report.longrepr
        phase["message"] = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    elif report.failed:
        phase["outcome"] = "failed" if report.when == "call" else "error"
        if call.excinfo is not None:
            phase.update(_describe_failure(call.excinfo.value))
        phase["reproduce"] = _reproduce_command(item, contract)
    return phase


def _message(error: BaseException) -> str:
    if isinstance(error, AssertionError) and str(error):
        # Keep the contract's own words; pytest's assert introspection follows them.
        return str(error).split("\nassert ", 1)[0]
    return f"{type(error).__name__}: {error}"


def _describe_failure(error: BaseException) -> dict[str, str | None]:
    message = _message(error)
    subexceptions = getattr(error, "exceptions", None)
    if subexceptions:
        # Hypothesis groups distinct or flaky failures: say so, then show the first one.
        message = f"{type(error).__name__}: {str(error).splitlines()[0]}\n" + _message(
            subexceptions[0])
    notes: list[str] = []
    pending = [error]
    while pending:
        current = pending.pop(0)
        notes.extend(getattr(current, "__notes__", []))
        pending.extend(getattr(current, "exceptions", []))
    counterexample = "\n".join(note for note in notes if note.strip()) or None
    return {"message": message[:_MESSAGE_LIMIT], "counterexample": counterexample}


def _reproduce_command(item: pytest.Item, contract: Contract) -> str:
    config = item.config
    words = ["python", "-m", "conformance"]
    for option in ("impl", "python", "prelude"):
        value = config.getoption(option)
        if value:
            words += [f"--{option}", value]
    words += ["--contract", contract.id]
    server_class = _server_class(item)
    if server_class:
        words += ["--server", server_class]
    words += ["--hypothesis-profile", _profile_name(config)]
    return shlex.join(words)


class _ResultsCollector:
    """Gathers contract results on the controller and writes the reports once, at the end."""

    def __init__(self, config: pytest.Config, results: RunResults) -> None:
        self.config = config
        self.results = results
        self.folder: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, value in report.user_properties:
            if name == _USER_PROPERTY:
                self.results.add(Contract(**value["contract"]), value)

    def pytest_sessionfinish(self) -> None:
        if not self.results.contracts:
            return
        self.folder = os.path.join(str(self.config.invocation_params.dir),
                                   self.config.getoption("report_dir"),
                                   self.results.target["name"])
        self.results.write(os.path.join(self.folder, "results.json"))
        write_junit(self.results, os.path.join(self.folder, "junit.xml"))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.folder is None:
            return
        terminalreporter.section("socketserver conformance")
        for text, markup in verdict_lines(self.results):
            terminalreporter.line(text, **markup)
        shown = os.path.relpath(self.folder)
        if shown.startswith(os.pardir):
            shown = self.folder
        terminalreporter.line(f"reports: {shown}/{{results.json,junit.xml}}")
