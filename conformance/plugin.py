"""The pytest plugin: target options, the harness and server fixtures, and the reports.

Registered through the ``pytest11`` entry point, so ``pytest --pyargs conformance.contracts
--impl mypkg.myserver -n auto`` works wherever the kit is installed. Workers run contract
tests and attach what they found to each test report; the controller (or the only process,
without xdist) gathers those into results.json, junit.xml and the terminal verdict.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from conformance import __version__, bounds
from conformance.clients import wire_log
from conformance.contracts.catalog import (
    MARKER,
    SHOULD,
    Contract,
    ServerCase,
    catalog,
    server_cases,
)
from conformance.coverage.measurement import (
    CoverageError,
    Measurement,
    absolute_globs,
    require_coverage,
)
from conformance.coverage.measurement import context as coverage_context
from conformance.expectations import (
    FAIL,
    Baseline,
    ExpectationsError,
    load,
    shipped_baseline,
)
from conformance.harness import (
    HandlerSpec,
    Harness,
    HarnessError,
    Hello,
    ServedServer,
    StopReport,
    UserClass,
    UserServerClass,
    is_datagram_class,
)
from conformance.harness.pool import HarnessPool
from conformance.options import (
    GROUP,
    GROUP_DESCRIPTION,
    OPTIONS,
    STARTING_OPTIONS,
    OptionsError,
    RunOptions,
)
from conformance.reporting.collector import ResultsCollector
from conformance.reporting.results import RunResults
from conformance.stopping import RunClock, limit_shrinking, shrink_note, shrinking_stopped
from conformance.strategies import use_payloads
from conformance.targets import Target, TargetError

_TARGETS = pytest.StashKey["dict[str, TargetRun]"]()
_SERVED = pytest.StashKey["list[ServedServer]"]()
_OPTIONS = pytest.StashKey[RunOptions]()
# The user's own server classes (--server-class, which takes one target), as its harness
# loaded them: the contract tests' server cases.
_USER_SERVERS = pytest.StashKey[tuple[UserServerClass, ...]]()
# How the controller hands them to xdist workers: they then collect the same cases
# without starting a harness first.
_WORKER_INPUT = "conformance_server_classes"
# --coverage: what each target's harnesses measure, by label, as the controller decided it
# (it empties the data folders before any worker starts a harness).
_MEASUREMENTS = pytest.StashKey["dict[str, Measurement]"]()
_COVERAGE_INPUT = "conformance_coverage"
USER_PROPERTY = "conformance"
_MESSAGE_LIMIT = 4000
_STRICT_XPASS = "[XPASS(strict)]"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, GROUP_DESCRIPTION)
    for option in OPTIONS:
        # --strict is pytest's own: the kit reads it, it does not declare it again.
        if option.owner is None:
            group.addoption(option.flag, **option.kwargs())


@dataclass
class TargetRun:
    """One target of the run, in this process: its harness pool and its baseline."""

    pool: HarnessPool
    baseline: Baseline

    @property
    def target(self) -> Target:
        return self.pool.target


def _pools_for(options: RunOptions) -> dict[str, HarnessPool]:
    """A harness pool per target the options name, by label: presets or impl/python/prelude.
    A preset that cannot run here gets a pool that skips every contract with the reason."""
    pools = {target.name(): HarnessPool(target) for target in options.explicit_targets()}
    for preset in options.chosen_presets():
        target, unavailable = preset.resolve()
        pools[preset.name] = HarnessPool(target, unavailable=unavailable,
                                         install_hint=preset.install_hint(target.python))
    return pools


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def run_options(config: pytest.Config) -> RunOptions:
    """The run's options, read and checked when pytest was configured."""
    return config.stash[_OPTIONS]


def _read_options(config: pytest.Config) -> RunOptions:
    """The options, checked; Hypothesis' profile loaded. UsageError for bad usage."""
    # Hypothesis is imported here, not at plugin import, so that pytest can still rewrite
    # the asserts of Hypothesis' own plugin.
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    from conformance import profiles

    profiles.register()
    try:
        options = RunOptions.read(lambda name: config.getoption(name, None),
                                  profile=_profile_name(config))
        options.check()
        settings.load_profile(options.profile)
    except InvalidArgument:
        raise pytest.UsageError(f"--hypothesis-profile {_profile_name(config)}: unknown; "
                                "known profiles: " + ", ".join(profiles.PROFILES)) from None
    except (OptionsError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
    return options


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(id): the test checks the socketserver contract with this id")
    # tryfirst, so that the profiles are registered before Hypothesis' plugin loads the one
    # --hypothesis-profile names.
    options = config.stash[_OPTIONS] = _read_options(config)
    use_payloads(options.payloads)
    bounds.set_scale(options.timeout_scale)
    limit_shrinking()
    config.pluginmanager.register(RunClock(config, options.max_time), "conformance-clock")
    pools = _pools_for(options)
    hellos = {} if _is_worker(config) else _probe_all(options, pools)
    users = config.stash[_USER_SERVERS] = _user_servers(config, hellos)
    servers_of = _servers_of(users)
    runs = config.stash[_TARGETS] = {
        label: TargetRun(pool, _baseline(config, pool.target, servers_of))
        for label, pool in pools.items()}
    if _is_worker(config):
        _measure_as_told(config, runs)
        return
    collector = ResultsCollector(config, USER_PROPERTY)
    for label, run in runs.items():
        results = RunResults(target=run.target.describe(hellos.get(label)),
                             profile=options.profile, seed=options.seed,
                             strict=options.strict, timeout_scale=options.timeout_scale,
                             versions=_versions(),
                             baseline=run.baseline.file())
        collector.add_target(label, results,
                             run.baseline if options.update_expectations else None,
                             servers_of)
    if options.coverage:
        _measure(config, options, runs, collector)
    config.pluginmanager.register(collector, "conformance-results")


def _measure(config: pytest.Config, options: RunOptions, runs: dict[str, TargetRun],
             collector: ResultsCollector) -> None:
    """--coverage, on the controller: every target that can run here must have coverage.py
    (bad usage otherwise); its harnesses measure into a fresh folder beside its reports,
    and the collector reports on what they measured at the end."""
    include = absolute_globs(options.coverage_include, str(config.invocation_params.dir))
    measurements = config.stash[_MEASUREMENTS] = {}
    for label, run in runs.items():
        if run.pool.unavailable:
            continue
        interpreter = run.target.interpreter()
        try:
            require_coverage(interpreter)
        except CoverageError as exc:
            raise pytest.UsageError(str(exc)) from None
        measurement = measurements[label] = Measurement.fresh(collector.folder(label),
                                                               include)
        run.pool.measurement = measurement
        collector.measure(label, interpreter, measurement)


def _measure_as_told(config: pytest.Config, runs: dict[str, TargetRun]) -> None:
    """--coverage, on an xdist worker: measure as the controller decided."""
    told = config.workerinput.get(_COVERAGE_INPUT, {})  # type: ignore[attr-defined]
    for label, fields in told.items():
        runs[label].pool.measurement = Measurement(fields["folder"],
                                                   tuple(fields["include"]))


def _probe_all(options: RunOptions,
               pools: dict[str, HarnessPool]) -> dict[str, dict[str, Any]]:
    """Each target's hello, by label, when the options name what to start.

    The only start of the targets before the tests: a module that does not import, a
    server class that is none or an interpreter that does not run is bad usage. (A preset
    that cannot run here is not: its contracts are skipped with the reason. Without target
    options, the plugin, loaded by every pytest run where the kit is installed, starts
    nothing.)"""
    if not any(getattr(options, name) for name in STARTING_OPTIONS):
        return {}
    try:
        return {label: probe(pool.target) for label, pool in pools.items()}
    except (TargetError, HarnessError) as exc:
        raise pytest.UsageError(str(exc).strip()) from None


def _user_servers(config: pytest.Config,
                  hellos: dict[str, dict[str, Any]]) -> tuple[UserServerClass, ...]:
    """The user's own server classes (--server-class), as the harness loaded them: from
    its hello on the controller, from the controller on an xdist worker."""
    if _is_worker(config):
        sent = config.workerinput.get(_WORKER_INPUT, [])  # type: ignore[attr-defined]
        return tuple(UserServerClass(**fields) for fields in sent)
    return tuple(user for hello in hellos.values()
                 for user in Hello.from_reply(hello).server_classes)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    users = node.config.stash.get(_USER_SERVERS, ())
    node.workerinput[_WORKER_INPUT] = [dataclasses.asdict(user) for user in users]
    node.workerinput[_COVERAGE_INPUT] = {
        label: dataclasses.asdict(measurement)
        for label, measurement in node.config.stash.get(_MEASUREMENTS, {}).items()}


def _servers_of(users: tuple[UserServerClass, ...]) -> dict[str, tuple[str, ...]] | None:
    """With user server classes: each contract's cases by name, which a baseline's
    ``servers`` name (None: the catalog's server classes)."""
    if not users:
        return None
    return {contract.id: tuple(case.name for case in server_cases(contract, users))
            for contract in catalog()}


def _versions() -> dict[str, str]:
    import platform

    import hypothesis

    return {"kit": __version__, "pytest": pytest.__version__,
            "hypothesis": hypothesis.__version__, "python": platform.python_version()}


def _baseline(config: pytest.Config, target: Target,
              servers_of: dict[str, tuple[str, ...]] | None = None) -> Baseline:
    """The baseline this run is checked against, read and checked before any test runs:
    ``--expectations FILE`` (relative to the invocation folder; it must exist, unless
    --update-expectations is to write it), else the one the kit ships for ``--target``.
    ``servers_of``: the server classes (cases) of each contract, when not the catalog's."""
    path = config.getoption("expectations")
    update = config.getoption("update_expectations")
    if path is not None:
        path = os.path.join(str(config.invocation_params.dir), path)
    elif target.preset is not None and shipped_baseline(target.preset):
        path = shipped_baseline(target.preset)
    elif update:
        raise pytest.UsageError("--update-expectations needs --expectations FILE: "
                                + (f"the kit ships no baseline for {target.preset}"
                                   if target.preset else "there is no --target"))
    else:
        return Baseline("")
    try:
        return load(path, required=not update, contracts=servers_of)
    except ExpectationsError as exc:
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


@pytest.fixture(scope="session")
def target_runs(pytestconfig: pytest.Config) -> Iterator[dict[str, TargetRun]]:
    """Every target of the run, by label, each with its harness; one harness per target
    and pytest process (so per xdist worker), stopped at the end."""
    runs = pytestconfig.stash[_TARGETS]
    yield runs
    for run in runs.values():
        run.pool.discard()


@pytest.fixture
def target_label(request: pytest.FixtureRequest, target_runs: dict[str, TargetRun]) -> str:
    """The label of the target this test checks: its parameter when the run has several."""
    return getattr(request, "param", None) or next(iter(target_runs))


@pytest.fixture
def target_run(target_runs: dict[str, TargetRun], target_label: str) -> TargetRun:
    """The target this test checks, with its harness pool and baseline."""
    run = target_runs[target_label]
    # A process keeps few harnesses running: tests come grouped by target.
    for label, other in target_runs.items():
        if label != target_label:
            other.pool.discard()
    return run


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every contract test runs once per server case: its server classes, or the user's
    # own classes of those kinds (--server-class). With several targets, once per target
    # too, as its last parameter (test_echo_upper[TCPServer-recv_text_mode]).
    contract: Contract | None = getattr(metafunc.function, "contract", None)
    if contract is not None:
        cases = server_cases(contract, metafunc.config.stash.get(_USER_SERVERS, ()))
        metafunc.parametrize("server_class", cases, ids=[case.name for case in cases],
                             indirect=True)
    labels = list(metafunc.config.stash[_TARGETS])
    if len(labels) > 1 and "target_label" in metafunc.fixturenames:
        metafunc.parametrize("target_label", labels, indirect=True, ids=labels)


@pytest.fixture
def server_class(request: pytest.FixtureRequest) -> str:
    """The documented server class a contract test checks: the case's, or the kind a
    user's own server class corresponds to (``server_case`` says which)."""
    case: ServerCase = request.param
    return case.kind


@pytest.fixture
def server_case(request: pytest.FixtureRequest, server_class: str) -> ServerCase:
    """The case a contract test runs: its name, kind, and the user's own class if any."""
    case = _case(request.node)
    assert case is not None, f"{request.node.nodeid} runs on no server case"
    return case


def _applicable_harness(request: pytest.FixtureRequest, run: TargetRun) -> Harness:
    """The harness, after skipping a contract that the target's Python version predates
    and marking one that the target's expectations list as an expected failure."""
    harness = run.pool.get()
    contract: Contract | None = getattr(request.node.function, "contract", None)
    if contract is None:
        return harness
    python_version = harness.hello["python_version"]
    if contract.since is not None:
        version = tuple(int(part) for part in python_version.split(".")[:2])
        if version < tuple(contract.since):
            since = ".".join(map(str, contract.since))
            pytest.skip(f"not applicable: new in Python {since}, the target runs "
                        f"{python_version}")
    baseline = run.baseline
    expected = baseline.find(contract.id, _server_class(request.node), python_version)
    if expected is not None:
        # "fail" is strict: if the contract now holds, the stale entry fails the run.
        request.applymarker(pytest.mark.xfail(
            reason=f"expected ({os.path.basename(baseline.path)}): {expected.reason}",
            strict=expected.outcome == FAIL))
    return harness


@pytest.fixture
def harness(request: pytest.FixtureRequest, target_run: TargetRun) -> Harness:
    """The running harness, for contracts about classes rather than running servers."""
    return _applicable_harness(request, target_run)


@pytest.fixture
def serve(request: pytest.FixtureRequest, target_run: TargetRun, server_class: str,
          server_case: ServerCase) -> Iterator[Callable[..., ServedServer]]:
    """Start ``server_class`` servers of the target (or the user's own server class of
    that kind, with --server-class): ``serve(handler, **options)`` takes what
    Harness.start takes; without a handler, the reference handler (or the user's own,
    with --handler). Skips when the target has no such class. After the test every server
    is shut down and closed, by other means where its shutdown() or server_close() fails
    (see _stop_all)."""
    started: list[ServedServer] = request.node.stash.setdefault(_SERVED, [])
    user_class = server_case.user_class

    def start(handler: HandlerSpec | None = None, **options: Any) -> ServedServer:
        harness = _applicable_harness(request, target_run)
        if user_class is None and server_class not in harness.classes:
            pytest.skip(f"{harness.target_name} has no {server_class}")
        if handler is None:
            handler = _default_handler(harness, target_run.target, server_class)
        if "Unix" in server_class:
            options.setdefault("family", "unix")
        served = harness.start(server_class, handler, user_class=user_class,
                               context=_coverage_context(request, server_case), **options)
        started.append(served)
        return served

    yield start
    _stop_all(started, target_run.pool, server_class)


def _coverage_context(request: pytest.FixtureRequest, case: ServerCase) -> str | None:
    """The coverage context of what a contract test's servers run (--coverage)."""
    contract: Contract | None = getattr(request.node.function, "contract", None)
    return None if contract is None else coverage_context(contract.id, case.name)


def _default_handler(harness: Harness, target: Target, server_class: str) -> HandlerSpec:
    """The reference handler, or the user's own with --handler (skipping a server class of
    the other kind: a stream handler on a datagram server, or the reverse)."""
    if not target.handler:
        return HandlerSpec.reference(server_class)
    handles_datagrams = harness.facts.user_handler_is_datagram
    if handles_datagrams != is_datagram_class(server_class):
        pytest.skip(f"not applicable: {target.handler} is a "
                    f"{'datagram' if handles_datagrams else 'stream'} handler")
    return UserClass(spec=target.handler_spec())


def _stop_all(started: list[ServedServer], pool: HarnessPool, server_class: str) -> None:
    """Stop every server a test started.

    Stopping is not the test: when a server's shutdown() or server_close() goes wrong here,
    the harness stops it by other means (see StopReport), and a StopWarning names the
    contract that checks what went wrong, which fails on its own. A harness left with
    something it could not stop is replaced, so that the next test gets a fresh one. Only
    a harness that does not answer fails the test (and is replaced too)."""
    replace = False
    for served in started:
        if not served.harness.usable:
            replace = True
            break
        try:
            report = served.stop()
        except HarnessError:
            pool.discard()
            raise
        for problem in _stop_problems(report, server_class, bare_base=served.bare_base):
            warnings.warn(StopWarning(f"stopping {server_class}: {problem}"), stacklevel=2)
        replace = replace or not report.clean
    if replace:
        pool.discard()


class StopWarning(UserWarning):
    """A server did not stop as documented at the end of a test; the harness stopped it by
    other means, and the contract named says what went wrong."""


# The contracts that check stopping a server.
SHUTDOWN_CONTRACT = "lifecycle.shutdown_bound"
CLOSE_CONTRACT = "lifecycle.server_close"
BLOCK_ON_CLOSE_CONTRACT = "resources.block_on_close"
# The contract that checks the server_close() of a bare BaseServer subclass: BaseServer's own.
BASE_DEFAULTS_CONTRACT = "classes.base_server_defaults"


def _stop_problems(report: StopReport, server_class: str, *,
                   bare_base: bool = False) -> list[str]:
    """What went wrong stopping a server (a bare BaseServer subclass, with ``bare_base``),
    each naming the contract that covers it."""
    problems = []
    shutdown = _shutdown_problem(report)
    if shutdown:
        problems.append(f"{shutdown} (see {SHUTDOWN_CONTRACT})")
    close = _close_problem(report)
    if close and bare_base:
        problems.append(f"{close} (BaseServer's own; see {BASE_DEFAULTS_CONTRACT})")
    elif close:
        # A threading or forking server_close() that hangs waits for its handlers.
        waits = report.close_hung and server_class.startswith(("Threading", "Forking"))
        problems.append(f"{close} (see {CLOSE_CONTRACT}"
                        + (f" and {BLOCK_ON_CLOSE_CONTRACT})" if waits else ")"))
    if report.stranded:
        problems.append("the harness was replaced, as it still ran "
                        + ", ".join(report.stranded))
    return problems


def _hung(what: str) -> str:
    return f"{what} did not return within {bounds.STOP:g}s"


def _shutdown_problem(report: StopReport) -> str | None:
    """What shutdown() did wrong, and how the harness ended serve_forever() instead."""
    if report.shutdown_hung:
        called = f"shutdown() did not return within {report.shutdown_waited:g}s"
    elif report.shutdown_failed:
        called = f"shutdown() raised {report.shutdown_error}"
    else:
        called = f"shutdown() returned, but {bounds.STOP:g}s later"
    if report.serve_forever_exited:
        return None if not report.shutdown_failed else f"{called}, though serve_forever() stopped"
    means = "setting the stdlib's shutdown flag" + (
        " and closing the server's socket" if report.forced_socket_closed else "")
    ended = (f"the harness ended it by {means}" if report.serve_forever_stopped
             else f"not even {means} ended it")
    return f"{called}, serve_forever() was still running; {ended}"


def _close_problem(report: StopReport) -> str | None:
    """What server_close() did wrong, and whether the harness closed the socket instead."""
    left_open = report.socket_left_open
    if report.close_hung:
        called = _hung("server_close()")
    elif not report.closed:
        called = f"server_close() raised {report.close_error}"
    elif left_open:
        return "server_close() returned, but left the server's socket open; the harness closed it"
    else:
        return None
    return called + ("; the harness closed the server's socket" if left_open else "")


@pytest.fixture
def server(serve: Callable[..., ServedServer]) -> ServedServer:
    """A ``server_class`` server of the target serving the reference handler: the
    documentation's uppercase echo (streams) or datagram reply (UDP)."""
    return serve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    options = run_options(config)
    labels = list(config.stash[_TARGETS])
    if len(labels) > 1:
        # One target after another: each process then keeps few harnesses running.
        items.sort(key=lambda item: labels.index(_label(item)))
    if not (options.contract or options.server or options.handler or options.server_class):
        return
    selected, deselected = [], []
    for item in items:
        contract: Contract | None = getattr(getattr(item, "function", None), "contract", None)
        # A contract that runs on no user class's kind has no case (an empty parameter set).
        keep = contract is None or (_case(item) is not None
                                    and options.selects(contract, _server_class(item)))
        (selected if keep else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


def _case(item: pytest.Item) -> ServerCase | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("server_class") if callspec is not None else None
    return case if isinstance(case, ServerCase) else None


def _server_class(item: pytest.Item) -> str | None:
    """The name of the item's server case, as reports and baselines name it."""
    case = _case(item)
    return case.name if case is not None else None


def _label(item: pytest.Item) -> str:
    """The label of the target an item checks: its parameter when the run has several."""
    callspec = getattr(item, "callspec", None)
    label = callspec.params.get("target_label") if callspec is not None else None
    return label or next(iter(item.config.stash[_TARGETS]))


def _target_run(item: pytest.Item) -> TargetRun | None:
    runs = item.config.stash.get(_TARGETS, None)
    return runs[_label(item)] if runs else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # The harness is shared by the tests of a process: a failure quotes only the harness
    # stderr written since its own test began, not an earlier test's.
    run = _target_run(item)
    if run is not None:
        run.pool.mark_stderr()
    wire_log.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report = yield
    contract: Contract | None = getattr(getattr(item, "function", None), "contract", None)
    if contract is not None:
        phase = _phase(item, call, report)
        if (contract.level == SHOULD and report.failed and report.when == "call"
                and not run_options(item.config).strict):
            # A should-level failure is reported everywhere as a failure that does not
            # fail the run; to pytest (and so to the exit status) it is an expected one.
            report.outcome = "skipped"
            report.wasxfail = (f"{contract.id} is a should-level contract: its failure "
                               "is reported, not failing the run without --strict")
            phase["blocking"] = False
        report.user_properties.append((USER_PROPERTY, phase))
    return report


def _phase(item: pytest.Item, call: pytest.CallInfo[None],
           report: pytest.TestReport) -> dict[str, Any]:
    """What one phase of a contract test found, in a form that survives xdist."""
    contract: Contract = item.function.contract  # type: ignore[attr-defined]
    run = _target_run(item)
    assert run is not None
    phase: dict[str, Any] = {
        "contract": contract.__dict__.copy(),
        "server": _server_class(item),
        "nodeid": item.nodeid,
        "when": report.when,
        "duration": report.duration,
        "outcome": "passed",
        "target": run.pool.describe(),
        "label": _label(item),
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
            if shrinking_stopped(report):
                phase["message"] = f"{phase['message']}\n{shrink_note()}"
            phase["transcript"] = _transcript(item)
        elif str(report.longrepr).startswith(_STRICT_XPASS):
            phase["xpassed"] = True
            phase["message"] = ("unexpected pass: the contract now holds, but the "
                                "expectations list it as failing ("
                                + str(report.longrepr)[len(_STRICT_XPASS):].strip()
                                + "); remove the entry or run --update-expectations")
        phase["reproduce"] = run_options(item.config).reproduce(contract.id,
                                                                _server_class(item),
                                                                run.target)
    return phase


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # With -x or --maxfail, pytest-xdist ends the run as interrupted (exit status 2, the
    # kit's bad usage); a run stopped because a contract failed has failed: 1.
    if (session.exitstatus == pytest.ExitCode.INTERRUPTED and session.testsfailed
            and session.config.getoption("maxfail", 0)):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _transcript(item: pytest.Item) -> list[dict[str, Any]] | None:
    """The last example's wire log (the minimal failing one), with what the server and its
    handlers reported meanwhile; None when no client of the kit's ran."""
    log = wire_log.entries()
    if not log:
        return None
    start = log[0].t
    seen = [wire_log.Entry(o.t, o.who, o.event)
            for served in item.stash.get(_SERVED, []) for o in served.observed(start)]
    merged = sorted([*log, *seen], key=lambda entry: entry.t)[:wire_log.MAX_ENTRIES]
    return [entry.to_json(start) for entry in merged]


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
