"""A target that hangs, crashes, cannot load or turns hostile ends as a clear failure of the
contracts it breaks, in bounded time, with nothing left running; the other contracts still
run and get the verdict of their own assertions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from conformance import bounds
from conformance.harness.process import AGENT_PATH
from tests.conftest import MISBEHAVING, RUN_MARKER, leftover_processes

# The contracts that call shutdown() themselves, so that a shutdown() which raises fails
# them: lifecycle.shutdown_bound checks it; no_request_after_shutdown, shutdown_in_handler
# and resources.block_on_close call it in their scenario; context_manager checks that only
# shutdown() stops the loop; bind_and_activate, serve_forever_timeout and service_actions
# run serve_forever() themselves and stop it with shutdown() (the last two once per example).
SHUTDOWN_CALLERS = {
    "lifecycle.shutdown_bound",
    "lifecycle.no_request_after_shutdown",
    "lifecycle.shutdown_in_handler",
    "lifecycle.context_manager",
    "lifecycle.bind_and_activate",
    "lifecycle.serve_forever_timeout",
    "lifecycle.service_actions",
    "resources.block_on_close",
}
# Started by hand, the kit has its harness and the target's helper running within this.
HARNESS_UP = 60.0
# Once the kit is gone, its harness sees its requests end and ends everything within this.
ORPHANS_GONE = 15.0


def _not_passed(outcomes: dict[str, str]) -> set[str]:
    return {cid for cid, outcome in outcomes.items() if outcome != "passed"}


# At the end of a test, the harness waits for shutdown() the kit's poll_interval (0.05 s)
# plus LOOP_SLACK, as lifecycle.shutdown_bound allows, not the whole STOP bound.
TEARDOWN_SHUTDOWN_WAIT = bounds.LOOP_SLACK + 0.05


def _cases(run, target: str, contract_id: str) -> dict[str, dict]:
    contract = next(c for c in run.results(target)["contracts"] if c["id"] == contract_id)
    return {case["server"]: case for case in contract["cases"]}


def test_a_hanging_shutdown_fails_only_its_contract(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "shutdown_hangs.py"), "--server", "TCPServer",
                  "--contract", "handler.server", "--contract", "lifecycle.shutdown_bound")
    assert run.code == 1, run.stdout + run.stderr
    outcomes = run.outcomes("shutdown_hangs")
    assert outcomes == {"handler.server": "passed", "lifecycle.shutdown_bound": "failed"}
    bound = _cases(run, "shutdown_hangs", "lifecycle.shutdown_bound")["TCPServer"]
    assert "shutdown() did not return within" in bound["message"]
    assert (f"shutdown() did not return within {TEARDOWN_SHUTDOWN_WAIT:g}s, serve_forever() "
            "was still running; the "
            "harness ended it by setting the stdlib's shutdown flag "
            "(see lifecycle.shutdown_bound)") in run.stdout
    assert not leftover_processes(run.marker)


def test_a_crashing_target_fails_and_the_next_test_gets_a_fresh_harness(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "handler_kills_process.py"),
                  "--server", "TCPServer", "--server", "UDPServer",
                  "--contract", "handler.server")
    assert run.code == 1, run.stdout + run.stderr
    cases = _cases(run, "handler_kills_process", "handler.server")
    assert cases["TCPServer"]["outcome"] in ("failed", "error")
    assert "the harness exited" in cases["TCPServer"]["message"]
    assert "exit status 17" in cases["TCPServer"]["message"]
    assert cases["UDPServer"]["outcome"] == "passed"
    assert not leftover_processes(run.marker)


def test_xdist_workers_share_nothing_and_leave_nothing_behind(run_kit) -> None:
    run = run_kit("-n", "2")
    assert run.code == 0, run.stdout + run.stderr
    assert set(run.outcomes("stdlib").values()) <= {"passed", "skipped"}
    assert not leftover_processes(run.marker)


def test_a_shutdown_that_stops_the_loop_but_never_returns_fails_only_its_contract(
        run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "shutdown_never_returns.py"), "--server",
                  "TCPServer", "--contract", "handler.server",
                  "--contract", "lifecycle.shutdown_bound")
    assert run.code == 1, run.stdout + run.stderr
    outcomes = run.outcomes("shutdown_never_returns")
    assert outcomes == {"handler.server": "passed", "lifecycle.shutdown_bound": "failed"}
    assert (f"shutdown() did not return within {TEARDOWN_SHUTDOWN_WAIT:g}s, though "
            "serve_forever() stopped") in run.stdout
    assert not leftover_processes(run.marker)


def test_a_shutdown_that_raises_fails_only_the_contracts_that_call_it(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "shutdown_raises.py"), whole_catalog=True)
    assert run.code == 1, run.stdout + run.stderr
    assert _not_passed(run.outcomes("shutdown_raises")) == SHUTDOWN_CALLERS
    assert ("the harness ended it by setting the stdlib's shutdown flag "
            "(see lifecycle.shutdown_bound)") in run.stdout
    assert not leftover_processes(run.marker)


def test_a_server_close_that_leaves_the_socket_open_fails_only_its_contract(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "close_leaves_socket_open.py"),
                  whole_catalog=True)
    assert run.code == 1, run.stdout + run.stderr
    assert _not_passed(run.outcomes("close_leaves_socket_open")) == {"lifecycle.server_close"}
    assert ("server_close() returned, but left the server's socket open; the harness closed "
            "it (see lifecycle.server_close)") in run.stdout
    assert not leftover_processes(run.marker)


def test_handlers_that_flood_stdout_and_stderr_break_nothing(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "flood_output.py"), "--contract", "echo.upper",
                  "--server", "TCPServer", "--server", "ForkingTCPServer")
    assert run.code == 0, run.stdout[-3000:] + run.stderr
    assert run.outcomes("flood_output") == {"echo.upper": "passed"}
    assert not leftover_processes(run.marker)


def test_garbage_in_the_harness_channels_is_ignored_or_a_clear_failure(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "channel_garbage.py"), "--contract",
                  "handler.server", "--server", "TCPServer", "--server", "UDPServer")
    assert run.code == 1, run.stdout + run.stderr
    cases = _cases(run, "channel_garbage", "handler.server")
    # Garbage on stdout and in the report socket pair: ignored.
    assert cases["TCPServer"]["outcome"] == "passed", cases
    # Garbage in the agent's own pipe to the kit: that test fails, saying so.
    assert cases["UDPServer"]["outcome"] in ("failed", "error")
    assert "with something that is not a reply" in cases["UDPServer"]["message"]
    assert not leftover_processes(run.marker)


def test_a_fork_bomb_is_capped_and_fails_its_contract_saying_so(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "fork_bomb.py"), "--contract",
                  "handler.server", "--server", "TCPServer", "--server", "UDPServer")
    assert run.code == 1, run.stdout + run.stderr
    cases = _cases(run, "fork_bomb", "handler.server")
    assert cases["TCPServer"]["outcome"] in ("failed", "error")
    assert "the target forked without bound" in cases["TCPServer"]["message"]
    assert cases["UDPServer"]["outcome"] == "passed"
    assert not leftover_processes(run.marker)


def test_a_descriptor_leak_fails_the_contract_that_checks_connections_close(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "leaks_descriptors.py"), "--contract",
                  "eof.ends_handler", "--contract", "echo.upper", "--server", "TCPServer")
    assert run.code == 1, run.stdout + run.stderr
    assert run.outcomes("leaks_descriptors") == {"eof.ends_handler": "failed",
                                                 "echo.upper": "passed"}
    held = _cases(run, "leaks_descriptors", "eof.ends_handler")["TCPServer"]
    assert "still holds" in held["message"]
    assert not leftover_processes(run.marker)


def test_a_target_that_ignores_sigterm_leaves_nothing_running(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "ignores_sigterm.py"), "--contract",
                  "handler.server", "--server", "TCPServer")
    assert run.code == 0, run.stdout + run.stderr
    assert not leftover_processes(run.marker)


def test_a_killed_kit_leaves_nothing_of_its_harness_running(tmp_path: Path) -> None:
    """Even when the kit is killed and cannot stop its harness, the harness sees its
    requests end and kills what the target forked (here a helper that ignores SIGTERM)."""
    marker = uuid.uuid4().hex
    env = {**os.environ, RUN_MARKER: marker}
    env.pop("PYTEST_XDIST_WORKER", None)
    kit = subprocess.Popen(
        [sys.executable, "-m", "conformance", "--impl",
         str(MISBEHAVING / "ignores_sigterm.py"), "--report-dir", str(tmp_path / "reports"),
         "--hypothesis-profile", "quick", "--contract", "lifecycle.*"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + HARNESS_UP
        # The kit, its harness (the agent) and the target's helper.
        started = False
        while not started and time.monotonic() < deadline:
            time.sleep(0.2)
            started = len(leftover_processes(marker)) >= 3
        assert started, "the harness did not start"
    finally:
        kit.send_signal(signal.SIGKILL)
        kit.wait()
    deadline = time.monotonic() + ORPHANS_GONE
    while leftover_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not leftover_processes(marker)


def test_a_kit_gone_before_the_hello_leaves_nothing_of_the_target_running() -> None:
    """The kit can die while the target is being imported: the agent's hello then fails,
    and what the import forked (here a helper that ignores SIGTERM) must not outlive it."""
    marker = uuid.uuid4().hex
    read_end, write_end = os.pipe()
    os.close(read_end)
    agent = subprocess.Popen(
        [sys.executable, "-u", AGENT_PATH, "--impl", str(MISBEHAVING / "ignores_sigterm.py")],
        env={**os.environ, RUN_MARKER: marker}, stdin=subprocess.DEVNULL, stdout=write_end,
        stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(write_end)
    try:
        agent.wait(bounds.HARNESS_START)
    finally:
        agent.kill()
    assert agent.returncode != 0
    assert not leftover_processes(marker)
