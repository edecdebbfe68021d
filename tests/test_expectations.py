"""A baseline keeps CI green on known differences and red on new ones, and never goes stale."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

from conformance.cli import PROG
from conformance.expectations import (
    BASELINES_DIR,
    FAILED,
    PASSED,
    SKIPPED,
    Baseline,
    Cause,
    Expectation,
    dump,
    load,
    loads,
    shipped_baseline,
    updated,
    version_in_range,
)
from tests.conftest import BROKEN, MISBEHAVING

UDP_LIST = str(BROKEN / "udp_request_list.py")
# Two contracts on one server class keep these runs short.
SELECTION = ("--contract", "request.udp_tuple", "--contract", "handler.server",
             "--server", "UDPServer")


def _baseline(tmp_path: Path, *entries: str) -> str:
    path = tmp_path / "expectations.toml"
    path.write_text("\n".join(entries), encoding="utf-8")
    return str(path)


def _entry(contract: str, outcome: str = "fail") -> str:
    return f'[[expected]]\ncontract = "{contract}"\noutcome = "{outcome}"\nreason = "known"\n'


def test_a_listed_failure_is_xfailed_and_the_run_passes(run_kit, tmp_path: Path) -> None:
    path = _baseline(tmp_path, _entry("request.udp_tuple"))
    run = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", path)
    assert run.code == 0, run.stdout + run.stderr
    assert run.outcomes("udp_request_list") == {"request.udp_tuple": "xfailed",
                                                "handler.server": "passed"}
    # The reports name the baseline the run used, and its content.
    sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert run.results("udp_request_list")["baseline"] == {"path": path, "sha256": sha256}
    # run_kit runs in tmp_path: the summary shows the path relative to it.
    assert f"baseline: expectations.toml (sha256 {sha256[:12]})" in run.stdout


def test_a_failure_missing_from_the_baseline_fails_the_run(run_kit, tmp_path: Path) -> None:
    run = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", _baseline(tmp_path))
    assert run.code == 1
    assert run.outcomes("udp_request_list")["request.udp_tuple"] == "failed"


def test_an_unexpected_pass_fails_the_run(run_kit, tmp_path: Path) -> None:
    run = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", _baseline(
        tmp_path, _entry("request.udp_tuple"), _entry("handler.server")))
    assert run.code == 1, run.stdout + run.stderr
    (contract,) = [c for c in run.results("udp_request_list")["contracts"]
                   if c["id"] == "handler.server"]
    assert contract["outcome"] == "failed"
    assert contract["message"].startswith("unexpected pass")


def test_an_intermittent_entry_accepts_a_pass(run_kit, tmp_path: Path) -> None:
    (tmp_path / "repro").mkdir()
    (tmp_path / "repro" / "varies.py").write_text("print('the target varies')\n")
    run = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", _baseline(
        tmp_path, _entry("request.udp_tuple"),
        _entry("handler.server", "intermittent") + 'repro = "repro/varies.py"\n'))
    assert run.code == 0, run.stdout + run.stderr


def test_update_expectations_adopts_a_target_in_one_command(run_kit, tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    first = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", str(path),
                    "--update-expectations")
    assert first.code == 1
    written = load(str(path))
    # Only UDPServer was checked: the new entry names it, not every class.
    assert [(e.contract, e.outcome, e.servers) for e in written.entries] == [
        ("request.udp_tuple", "fail", ("UDPServer",))]
    second = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", str(path))
    assert second.code == 0, second.stdout + second.stderr


_GOOD = '[[expected]]\ncontract = "echo.upper"\noutcome = "fail"\nreason = "known"\n'


@pytest.mark.parametrize(("text", "says"), [
    ('[expected]\ncontract = "x"\n', "expected must be [[expected]] tables"),
    ('[cause.starve]\nreason = "r"\n' + _GOOD,
     "unknown table or key 'cause' (did you mean 'causes'?)"),
    (_GOOD + 'server = ["TCPServer"]\n',
     "entry 1 (echo.upper): unknown key 'server' (did you mean 'servers'?)"),
    (_GOOD.replace("echo.upper", "echo.uper"),
     "entry 1 (echo.uper): unknown contract 'echo.uper' (did you mean 'echo.upper'?)"),
    (_GOOD + 'servers = ["UDPServer"]\n',
     "entry 1 (echo.upper): echo.upper does not run on 'UDPServer'; its server classes: "
     "TCPServer, ThreadingTCPServer"),
    (_GOOD + 'python = ">=3.6,<<3.7"\n', "entry 1 (echo.upper): python = '>=3.6,<<3.7': "
     "'<<3.7' is not like '>=3.8'"),
    (_GOOD.replace('reason = "known"', 'cause = "starved"'),
     "entry 1 (echo.upper): unknown cause 'starved'"),
    ('[[expected]]\ncontract = "echo.upper"\n', "entry 1 (echo.upper): 'outcome' is required"),
    (_GOOD + _GOOD, "entry 2 (echo.upper): covers"),
    (_GOOD.replace('"fail"', '"intermittent"'),
     "entry 1 (echo.upper): an intermittent entry accepts pass and fail alike; it needs a "
     "repro"),
    (_GOOD + 'repro = "no_such_script.py"\n',
     "entry 1 (echo.upper): repro = 'no_such_script.py': no such file beside the baseline"),
    (_GOOD + 'repro = "../outside.py"\n',
     "entry 1 (echo.upper): repro = '../outside.py' must be a path relative to the "
     "baseline's folder, inside it"),
])
def test_a_malformed_baseline_is_one_line_and_exit_2(run_kit, tmp_path: Path, text: str,
                                                     says: str) -> None:
    path = _baseline(tmp_path, text)
    run = run_kit("--expectations", path, "--contract", "handler.server")
    assert run.code == 2, run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"{PROG}: error: {path}: ")
    assert says in line


def test_a_missing_baseline_file_is_one_line_and_exit_2(run_kit, tmp_path: Path) -> None:
    run = run_kit("--expectations", "nofile.toml")
    assert run.code == 2, run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line == f"{PROG}: error: {tmp_path / 'nofile.toml'}: no such expectations file"


def test_update_on_a_partial_run_changes_only_what_it_checked(run_kit, tmp_path: Path) -> None:
    before = _baseline(
        tmp_path, 'about = "kept"\n[causes.shared]\nreason = "one cause"\n',
        '[[expected]]\ncontract = "echo.upper"\noutcome = "fail"\ncause = "shared"\n'
        'note = "a note"\n',
        '[[expected]]\ncontract = "request.udp_tuple"\noutcome = "fail"\n'
        'servers = ["UDPServer"]\nreason = "listed"\n')
    old = load(before)
    run = run_kit("--impl", UDP_LIST, "--contract", "request.tcp_socket", "--server",
                  "TCPServer", "--expectations", before, "--update-expectations")
    assert run.code == 0, run.stdout + run.stderr
    new = load(before)
    assert (new.about, new.causes, new.entries) == (old.about, old.causes, old.entries)


def test_update_with_server_keeps_the_other_classes(run_kit, tmp_path: Path) -> None:
    path = _baseline(tmp_path, _entry("request.udp_tuple"), _entry("handler.server"))
    run = run_kit("--impl", UDP_LIST, "--contract", "request.udp_tuple", "--contract",
                  "handler.server", "--server", "TCPServer", "--expectations", path,
                  "--update-expectations")
    # handler.server holds on TCPServer: an unexpected pass, so the run fails ...
    assert run.code == 1, run.stdout + run.stderr
    by_contract = {e.contract: e for e in load(path).entries}
    # ... and the entry no longer lists TCPServer, but still every class the run did not
    # check; request.udp_tuple, which does not run on TCPServer, is untouched.
    assert by_contract["handler.server"].servers == tuple(
        s for s in _servers("handler.server") if s != "TCPServer")
    assert by_contract["handler.server"].reason == "known"
    assert by_contract["request.udp_tuple"] == Expectation("request.udp_tuple", "fail", "known")


def test_the_shipped_baseline_is_found_outside_the_checkout(run_kit, tmp_path: Path) -> None:
    # run_kit runs in tmp_path: nothing of the checkout is in the current folder.
    run = run_kit("--target", "eventlet", "--contract", "lifecycle.context_manager",
                  "--server", "TCPServer")
    assert run.code == 0, run.stdout + run.stderr
    shipped = shipped_baseline("eventlet")
    assert shipped is not None
    used = run.results("eventlet")["baseline"]
    assert Path(used["path"]).samefile(shipped)
    assert used["sha256"] == hashlib.sha256(Path(shipped).read_bytes()).hexdigest()
    # Without eventlet the contract is skipped, with its reason; with it, expected to fail.
    assert run.outcomes("eventlet")["lifecycle.context_manager"] in (
        "xfailed" if importlib.util.find_spec("eventlet") else "skipped")


def _servers(contract_id: str) -> tuple[str, ...]:
    from conformance.contracts.catalog import get

    return get(contract_id).servers


@pytest.mark.parametrize(("version", "spec", "holds"), [
    ("3.8.18", ">=3.6,<3.9", True),
    ("3.9.0", ">=3.6,<3.9", False),
    ("3.12.1", "==3.12", True),
    ("3.6.15", "<3.7", True),
])
def test_version_ranges(version: str, spec: str, holds: bool) -> None:
    assert version_in_range(version, spec) is holds


def test_updating_keeps_reasons_and_drops_what_now_passes() -> None:
    old = Baseline("x.toml", [
        Expectation("a.one", "fail", "why one"),
        Expectation("a.two", "fail", "why two"),
        Expectation("a.three", "fail", "only on 3.6", python="<3.7"),
    ])
    new = updated(old, {("a.one", "TCPServer"): FAILED, ("a.one", "UDPServer"): FAILED,
                        ("a.two", "TCPServer"): PASSED, ("a.two", "UDPServer"): PASSED,
                        ("a.three", "TCPServer"): PASSED},
                  python_version="3.11.7", contracts=CONTRACTS)
    assert new.entries == [old.entries[0], old.entries[2]]


def test_trouble_stopping_a_server_is_the_listed_contract_s_expected_failure_only(
        run_kit, tmp_path: Path) -> None:
    # A shutdown() that hangs at the end of a test fails only the contract that covers it;
    # a baseline listing that contract makes it an expected failure, and the other holds.
    run = run_kit("--impl", str(MISBEHAVING / "shutdown_hangs.py"), "--server", "TCPServer",
                  "--contract", "handler.server", "--contract", "lifecycle.shutdown_bound",
                  "--expectations", _baseline(tmp_path, _entry("lifecycle.shutdown_bound")))
    assert run.code == 0, run.stdout + run.stderr
    assert run.outcomes("shutdown_hangs") == {"handler.server": "passed",
                                              "lifecycle.shutdown_bound": "xfailed"}


CONTRACTS = {"a.one": ("TCPServer", "UDPServer"), "a.two": ("TCPServer", "UDPServer"),
             "a.three": ("TCPServer",)}


def test_updating_leaves_unchecked_and_skipped_classes_listed() -> None:
    old = Baseline("x.toml", [Expectation("a.one", "fail", "why one")])
    # Nothing passed (the target was unavailable): the entry stays as it was.
    skipped = {("a.one", "TCPServer"): SKIPPED, ("a.one", "UDPServer"): SKIPPED}
    assert updated(old, skipped, "3.11.7", contracts=CONTRACTS).entries == old.entries
    # TCPServer passed, UDPServer was not checked: the entry keeps UDPServer.
    narrowed = updated(old, {("a.one", "TCPServer"): PASSED}, "3.11.7", contracts=CONTRACTS)
    assert narrowed.entries == [Expectation("a.one", "fail", "why one", ("UDPServer",))]


def test_a_new_entry_names_the_failing_classes_unless_all_failed() -> None:
    new = updated(Baseline("x.toml"), {
        ("a.one", "TCPServer"): FAILED, ("a.one", "UDPServer"): PASSED,
        ("a.two", "TCPServer"): FAILED, ("a.two", "UDPServer"): FAILED,
        ("a.three", "TCPServer"): FAILED}, "3.11.7", contracts=CONTRACTS)
    assert {e.contract: e.servers for e in new.entries} == {
        "a.one": ("TCPServer",), "a.two": (), "a.three": ()}


def test_updating_keeps_causes_and_notes() -> None:
    cause = Cause("shared", "the shared reason")
    old = Baseline("x.toml", [Expectation("a.one", "fail", cause=cause, note="first."),
                              Expectation("a.two", "fail", cause=cause)],
                   {"shared": cause, "unused": Cause("unused", "kept anyway")})
    new = updated(old, {("a.one", "TCPServer"): FAILED, ("a.one", "UDPServer"): FAILED,
                        ("a.two", "TCPServer"): PASSED, ("a.two", "UDPServer"): PASSED},
                  "3.11.7", contracts=CONTRACTS)
    assert new.causes == old.causes
    assert new.entries == [old.entries[0]]
    assert new.entries[0].reason == "first. the shared reason"
    again = loads(dump(new, "x"), "x.toml", contracts=CONTRACTS)
    assert (again.causes, again.entries) == (new.causes, new.entries)


def test_long_reasons_are_wrapped_and_read_back_unchanged() -> None:
    reason = ('A "quoted" \\ backslash, a tab\t, ' + "word " * 60).strip()
    baseline = Baseline("x.toml", [Expectation("a.one", "fail", reason)])
    text = dump(baseline, "x")
    assert max(map(len, text.splitlines())) <= 100
    assert loads(text, "x.toml", contracts=CONTRACTS).entries == baseline.entries


@pytest.mark.parametrize("name", sorted(p.stem for p in Path(BASELINES_DIR).glob("*.toml")))
def test_the_shipped_baselines_are_as_update_expectations_writes_them(name: str) -> None:
    # So that a run that changes nothing leaves the file as it is.
    path = Path(BASELINES_DIR) / f"{name}.toml"
    assert dump(load(str(path)), name) == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(p.stem for p in Path(BASELINES_DIR).glob("*.toml")))
def test_a_shipped_intermittent_entry_has_a_committed_reproduction(name: str) -> None:
    # An intermittent entry checks nothing; the kit accepts one only where a script shows,
    # without the kit, that the target itself varies.
    for entry in load(str(Path(BASELINES_DIR) / f"{name}.toml")).entries:
        if entry.outcome == "intermittent":
            script = Path(BASELINES_DIR) / str(entry.reproduction)
            assert script.is_file(), f"{name}: {entry.contract}: {script} is missing"
            assert script.read_text(encoding="utf-8").startswith('"""'), (
                f"{script} should say what it shows, in its docstring")
