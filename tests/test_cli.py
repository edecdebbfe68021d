"""The command line: bad usage ends with exit status 2 and a one-line error naming the
option at fault; --help, --version and --list-contracts; a stopped run's exit status."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys

import pytest

import conformance
from conformance.cli import pytest_args
from conformance.contracts.catalog import catalog
from conformance.profiles import PROFILES
from tests.conftest import BROKEN, REPO


@pytest.mark.parametrize(("args", "says"), [
    (["--impl", "no_such_module_anywhere"], "--impl no_such_module_anywhere: ModuleNotFoundError"),
    (["--impl", "not a module"], "--impl not a module: not a module name or a .py file"),
    (["--impl", "missing/file.py"], "--impl missing/file.py: no such file"),
    (["--impl", str(REPO / "fixtures" / "misbehaving" / "import_fails.py")],
     "RuntimeError: this implementation refuses to import"),
    (["--python", "no-such-python3"], "--python no-such-python3: no such interpreter on PATH"),
    (["--python", "/nonexistent/python"], "--python /nonexistent/python: no executable"),
    (["--prelude", "gevent.monkey.patch_all"], "expected module:callable"),
    (["--prelude", "no_such_prelude_module:go"], "--prelude no_such_prelude_module:go:"),
    (["--prelude", "os:no_such_function"], "--prelude os:no_such_function: AttributeError"),
    # Options that cannot be combined, even with an option's default value.
    (["--target", "eventlet", "--impl", "socketserver"],
     "--target eventlet cannot be combined with --impl"),
    (["--target", "stdlib", "--handler", "x.py:Cls"],
     "--target stdlib cannot be combined with --handler"),
    (["--update-expectations"], "--update-expectations needs --expectations FILE"),
    (["--list-contracts", "--list-targets"], "not allowed with argument"),
    (["--server", "NoSuchServer"],
     "--server NoSuchServer: no such server class; the server classes are TCPServer, "),
    (["--payloads", "binary"], "argument --payloads: invalid choice: 'binary'"),
    (["--hypothesis-profile", "no-such-profile"], "--hypothesis-profile no-such-profile: "),
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["--timeout-scale", "0"], "--timeout-scale 0: must be a positive number"),
    (["--timeout-scale", "fast"], "--timeout-scale fast: must be a positive number"),
    (["--coverage-include", "src/*"], "--coverage-include src/* needs --coverage"),
    (["--coverage", "--coverage-include", " "], "--coverage-include: an empty glob"),
])
def test_bad_usage_is_exit_2_with_one_line(run_kit, args: list[str], says: str) -> None:
    run = run_kit(*args)
    assert run.code == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("python -m conformance: error: ")
    assert says in lines[0]


def test_selecting_no_contract_is_exit_5(run_kit) -> None:
    run = run_kit("--contract", "no.such.contract")
    assert run.code == 5
    assert "no contract was selected" in run.stderr


def test_only_the_selected_contracts_run(run_kit) -> None:
    run = run_kit("--contract", "request.*", "--server", "UDPServer")
    assert run.code == 0, run.stdout + run.stderr
    assert run.outcomes("stdlib") == {"request.udp_tuple": "passed"}


def _plugin_options() -> list[str]:
    """The options in the plugin's group of ``pytest --help``."""
    help_text = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args(["--help"])], capture_output=True,
        text=True, timeout=120, check=True).stdout
    group = help_text.split("\nsocketserver conformance:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^  (--[\w-]+)", group, flags=re.MULTILINE)


def test_help_lists_every_option(run_kit) -> None:
    run = run_kit("--help")
    assert run.code == 0, run.stderr
    plugin_options = _plugin_options()
    assert "--impl" in plugin_options
    listed = set(re.findall(r"^  (?:-\w, )?(--[\w-]+)", run.stdout, flags=re.MULTILINE))
    # The plugin's, pytest's --strict (the kit reads it), Hypothesis' and the command's.
    expected = {*plugin_options, "--strict", "--hypothesis-profile", "--hypothesis-seed",
                "--list-contracts", "--list-targets", "--version", "--help"}
    assert expected <= listed, expected - listed
    words = " ".join(run.stdout.split())
    for profile in PROFILES:
        assert f"{profile} (" in words
    assert "Any other argument goes to pytest" in words


def test_version_is_the_kits(run_kit) -> None:
    run = run_kit("--version")
    assert run.code == 0, run.stderr
    assert run.stdout.startswith(f"socketserver-conformance {conformance.__version__} ")


def test_list_contracts_honours_contract(run_kit) -> None:
    run = run_kit("--list-contracts", "--contract", "echo.*")
    assert run.code == 0, run.stderr
    listed = re.findall(r"^\| `([\w.]+)` \|", run.stdout, flags=re.MULTILINE)
    assert listed == [c.id for c in catalog() if fnmatch.fnmatchcase(c.id, "echo.*")]
    assert listed


def test_stopping_at_a_failed_contract_is_exit_1(run_kit) -> None:
    # pytest-xdist reports a run stopped by -x as interrupted; the kit: a contract failed.
    run = run_kit("--impl", str(BROKEN / "recv_text_mode.py"), "--contract", "echo.upper",
                  "-x", "-n", "2")
    assert run.code == 1, run.stdout + run.stderr
    assert run.outcomes("recv_text_mode") == {"echo.upper": "failed"}
