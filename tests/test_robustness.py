"""A target that hangs, crashes or cannot load ends as a clear failure, never a hung run."""

from __future__ import annotations

from tests.conftest import MISBEHAVING, leftover_processes


def test_a_hanging_shutdown_is_an_error_with_its_cause(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "shutdown_hangs.py"),
                  "--contract", "handler.server", "--server", "TCPServer")
    assert run.code == 1, run.stdout + run.stderr
    (contract,) = run.results("shutdown_hangs")["contracts"]
    assert contract["outcome"] == "error"
    assert "shutdown() did not return within 5s" in contract["message"]
    assert not leftover_processes(run.marker)


def test_a_crashing_target_fails_and_the_next_test_gets_a_fresh_harness(run_kit) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "handler_kills_process.py"),
                  "--server", "TCPServer", "--server", "UDPServer",
                  "--contract", "handler.server")
    assert run.code == 1, run.stdout + run.stderr
    (contract,) = run.results("handler_kills_process")["contracts"]
    cases = {case["server"]: case for case in contract["cases"]}
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
    assert "shutdown() did not return within 5s, though serve_forever() stopped" in run.stdout
    assert not leftover_processes(run.marker)
