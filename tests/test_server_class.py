"""--server-class checks a user's own server class wherever the documented class it derives
from is checked: http.server's ThreadingHTTPServer and fixtures/servers/daemon_threads.py,
each departing only as its baseline says; bad specs are bad usage."""

from __future__ import annotations

import socketserver
from http.server import HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest

from conformance.contracts.catalog import ServerCase, catalog, get, server_cases
from conformance.harness import UserServerClass
from conformance.harness.agent.instrumentation import server_kind
from conformance.options import RunOptions
from tests.conftest import REPO

SERVERS = REPO / "fixtures" / "servers"
DAEMON = f"{SERVERS / 'daemon_threads.py'}:DaemonThreadingTCPServer"
HTTP = "http.server:ThreadingHTTPServer"
# Enough to see each class served, checked by name and held to its baseline, and fast.
CONTRACTS = ("--contract", "handler.*", "--contract", "echo.*",
             "--contract", "resources.block_on_close", "--contract", "classes.*")
WORKERS = ("-n", "2")


class MixinLast(socketserver.TCPServer, socketserver.ThreadingMixIn):
    """Derives from ThreadingMixIn, but after TCPServer: BaseServer's process_request wins."""


@pytest.mark.parametrize(("cls", "kind"), [
    (HTTPServer, "TCPServer"),
    (ThreadingHTTPServer, "ThreadingTCPServer"),
    (MixinLast, "ThreadingTCPServer"),
    (type("F", (socketserver.ForkingMixIn, socketserver.UnixDatagramServer), {}),
     "ForkingUnixDatagramServer"),
    (type("U", (socketserver.UnixStreamServer,), {}), "UnixStreamServer"),
])
def test_a_class_runs_as_the_documented_class_it_derives_from(cls: type, kind: str) -> None:
    assert server_kind(socketserver, cls) == kind


def test_a_user_class_runs_exactly_where_its_kind_runs() -> None:
    user = UserServerClass("http.server:ThreadingHTTPServer", "ThreadingHTTPServer",
                           "ThreadingTCPServer")
    for contract in catalog():
        cases = server_cases(contract, [user])
        if "ThreadingTCPServer" in contract.servers:
            assert cases == [ServerCase("ThreadingHTTPServer", "ThreadingTCPServer",
                                        user.spec)], contract.id
        else:
            assert cases == [], contract.id
    assert server_cases(get("echo.upper"))[0] == ServerCase("TCPServer", "TCPServer")


def test_the_reproduce_command_names_the_class_alone() -> None:
    options = RunOptions(server_class=(HTTP, DAEMON), profile="quick")
    (target,) = options.explicit_targets()
    assert options.reproduce("echo.upper", "DaemonThreadingTCPServer", target) == (
        f"python -m conformance --server-class {DAEMON} --contract echo.upper "
        "--hypothesis-profile quick")


def test_threading_http_server_departs_only_as_its_baseline_says(run_kit) -> None:
    run = run_kit("--server-class", HTTP, "--expectations",
                  str(SERVERS / "threading_http.toml"), *CONTRACTS,
                  "--contract", "lifecycle.reuse_address", *WORKERS)
    assert run.code == 0, run.stdout + run.stderr
    results = run.results("stdlib+ThreadingHTTPServer")
    assert results["target"]["server_classes"] == [
        {"spec": HTTP, "name": "ThreadingHTTPServer", "kind": "ThreadingTCPServer"}]
    assert results["baseline"]["path"] == str(SERVERS / "threading_http.toml")
    by_id = {c["id"]: c for c in results["contracts"]}
    assert {case["server"] for c in by_id.values() for case in c["cases"]} == {
        "ThreadingHTTPServer"}
    assert by_id["echo.upper"]["outcome"] == "passed"
    assert by_id["classes.mixin_first"]["outcome"] == "passed"
    assert by_id["resources.block_on_close"]["outcome"] == "xfailed"
    assert by_id["lifecycle.reuse_address"]["outcome"] == "xfailed"
    # Not checked on the stdlib's own classes, nor on TCPServer's contracts alone.
    assert "classes.hierarchy" not in by_id
    exist = by_id["classes.exist"]
    assert exist["outcome"] == "skipped"
    assert "not applicable to a user server class" in exist["cases"][0]["message"]


def test_a_daemon_threads_class_fails_block_on_close_unless_its_baseline_says(
        run_kit) -> None:
    run = run_kit("--server-class", DAEMON, "--contract", "resources.block_on_close")
    assert run.code == 1, run.stdout + run.stderr
    failed = run.results("stdlib+DaemonThreadingTCPServer")["contracts"][0]
    assert failed["cases"][0]["server"] == "DaemonThreadingTCPServer"
    assert "did not wait for it" in failed["message"]
    assert f"--server-class {DAEMON} --contract resources.block_on_close" in (
        failed["reproduce"])
    run = run_kit("--server-class", DAEMON, "--expectations",
                  str(SERVERS / "daemon_threads.toml"), *CONTRACTS, *WORKERS)
    assert run.code == 0, run.stdout + run.stderr
    outcomes = run.outcomes("stdlib+DaemonThreadingTCPServer")
    assert outcomes["resources.block_on_close"] == "xfailed"
    assert outcomes["echo.upper"] == "passed"


def test_classes_mixin_first_holds_a_user_class_to_the_mixin_order(run_kit,
                                                                   tmp_path: Path) -> None:
    module = tmp_path / "mixin_last.py"
    module.write_text("import socketserver\n\n\nclass MixinLast(socketserver.TCPServer, "
                      "socketserver.ThreadingMixIn):\n    pass\n", encoding="utf-8")
    run = run_kit("--server-class", f"{module}:MixinLast", "--contract", "classes.*")
    assert run.code == 1, run.stdout + run.stderr
    result = {c["id"]: c for c in run.results("stdlib+MixinLast")["contracts"]}
    assert {cid: c["outcome"] for cid, c in result.items()} == {
        "classes.default_limits": "skipped", "classes.exist": "skipped",
        "classes.mixin_first": "failed", "classes.star_import": "skipped"}
    assert "MixinLast looks its attributes up in" in result["classes.mixin_first"]["message"]


@pytest.mark.parametrize(("args", "says"), [
    (["--server-class", "no_such_module_anywhere:Server"],
     "--server-class no_such_module_anywhere:Server: ModuleNotFoundError"),
    (["--server-class", "http.server:NoSuchServer"],
     "--server-class http.server:NoSuchServer: AttributeError"),
    (["--server-class", "socketserver:BaseRequestHandler"],
     "BaseRequestHandler derives from none of socketserver's TCPServer"),
    (["--server-class", "missing/servers.py:Server"], "no such file missing/servers.py"),
    (["--server-class", "http.server"], "--server-class http.server: expected module:Class"),
    (["--server-class", HTTP, "--server-class", "socketserver:ThreadingHTTPServer"],
     "two classes named ThreadingHTTPServer"),
    (["--server-class", HTTP, "--server", "TCPServer"],
     "--server TCPServer: no such server class; the server classes are ThreadingHTTPServer"),
    (["--target", "stdlib", "--server-class", HTTP],
     "--target stdlib cannot be combined with --server-class"),
    (["--impl", "socketserver", "--impl", str(REPO / "fixtures" / "broken" / "recv_text_mode.py"),
      "--server-class", HTTP], "--server-class applies to one target; this run has 2"),
])
def test_a_bad_server_class_is_exit_2_with_one_line(run_kit, args: list[str],
                                                    says: str) -> None:
    run = run_kit(*args, "--contract", "echo.upper")
    assert run.code == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert says in lines[0]
