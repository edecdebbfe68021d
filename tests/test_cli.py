"""Bad usage ends with exit status 2 and a one-line error naming the option at fault."""

from __future__ import annotations

import pytest

from tests.conftest import REPO


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
