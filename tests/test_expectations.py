"""A baseline keeps CI green on known differences and red on new ones, and never goes stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.expectations import Baseline, Expectation, load, updated, version_in_range
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
    run = run_kit("--impl", UDP_LIST, *SELECTION,
                  "--expectations", _baseline(tmp_path, _entry("request.udp_tuple")))
    assert run.code == 0, run.stdout + run.stderr
    assert run.outcomes("udp_request_list") == {"request.udp_tuple": "xfailed",
                                                "handler.server": "passed"}


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
    run = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", _baseline(
        tmp_path, _entry("request.udp_tuple"), _entry("handler.server", "intermittent")))
    assert run.code == 0, run.stdout + run.stderr


def test_update_expectations_adopts_a_target_in_one_command(run_kit, tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    first = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", str(path),
                    "--update-expectations")
    assert first.code == 1
    written = load(str(path))
    assert [(e.contract, e.outcome) for e in written.entries] == [("request.udp_tuple", "fail")]
    second = run_kit("--impl", UDP_LIST, *SELECTION, "--expectations", str(path))
    assert second.code == 0, second.stdout + second.stderr


def test_a_malformed_baseline_is_a_usage_error(run_kit, tmp_path: Path) -> None:
    run = run_kit("--expectations", _baseline(tmp_path, '[[expected]]\ncontract = "x"\n'),
                  "--contract", "handler.server")
    assert run.code == 2


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
    new = updated(old, failing={"a.one": ["TCPServer"], "a.four": ["UDPServer"]},
                  passing={"a.two": ["TCPServer"], "a.four": ["TCPServer"]},
                  python_version="3.11.7")
    by_contract = {e.contract: e for e in new.entries}
    assert set(by_contract) == {"a.one", "a.three", "a.four"}
    assert by_contract["a.one"].reason == "why one"
    assert by_contract["a.four"].servers == ("UDPServer",)


def test_trouble_stopping_a_server_the_baseline_expects_to_fail_is_expected_too(
        run_kit, tmp_path: Path) -> None:
    run = run_kit("--impl", str(MISBEHAVING / "shutdown_hangs.py"),
                  "--contract", "handler.server", "--server", "TCPServer",
                  "--expectations", _baseline(tmp_path, _entry("handler.server", "intermittent")))
    assert run.code == 0, run.stdout + run.stderr
    (contract,) = run.results("shutdown_hangs")["contracts"]
    assert contract["outcome"] == "xfailed"
