"""One verdict: the exit status, the terminal summary, results.json and junit.xml agree on
what failed and on whether it fails the run."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.conftest import BROKEN, REPO

UNCUT = str(BROKEN / "udp_datagrams_uncut.py")
UDP_SERVERS = ("UDPServer", "ThreadingUDPServer", "ForkingUDPServer")


def _junit(run, target: str) -> ET.Element:
    return ET.parse(run.report_dir / target / "junit.xml").getroot().find("testsuite")


def test_a_should_level_failure_is_reported_everywhere_as_not_blocking(run_kit) -> None:
    run = run_kit("--impl", UNCUT, "--contract", "udp.max_packet_size",
                  "--hypothesis-seed", "1234")
    assert run.code == 0, run.stdout + run.stderr
    assert "1 contract: 1 failed (should-level, not blocking)" in run.stdout
    # Every failing server class is listed, each with its own message and command.
    for server in UDP_SERVERS:
        assert f"       {server}: a 8193-byte datagram" in run.stdout
        assert f"--server {server} " in run.stdout
    results = run.results("udp_datagrams_uncut")
    (contract,) = results["contracts"]
    assert (contract["outcome"], contract["blocking"]) == ("failed", False)
    assert results["summary"]["failed"] == results["summary"]["not_blocking"] == 1
    assert (results["profile"], results["seed"], results["strict"]) == ("quick", "1234", False)
    assert set(results["versions"]) >= {"kit", "pytest", "hypothesis"}
    suite = _junit(run, "udp_datagrams_uncut")
    assert suite.get("failures") == "0"
    failed = [case for case in suite.iter("testcase")
              if case.get("name").endswith(tuple(f"[{s}]" for s in UDP_SERVERS))]
    assert len(failed) == 3
    for case in failed:
        assert case.find("failure") is None
        assert "not blocking" in case.find("skipped").get("message")
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties == {"outcome": "failed", "blocking": "false"}


def test_with_strict_it_is_a_failure_everywhere(run_kit) -> None:
    run = run_kit("--impl", UNCUT, "--contract", "udp.max_packet_size", "--server",
                  "UDPServer", "--strict")
    assert run.code == 1, run.stdout + run.stderr
    assert "1 contract: 1 failed\n" in run.stdout
    results = run.results("udp_datagrams_uncut")
    (contract,) = results["contracts"]
    assert (contract["outcome"], contract["blocking"]) == ("failed", True)
    assert results["summary"]["not_blocking"] == 0
    assert results["strict"] is True
    assert "--strict" in contract["reproduce"]
    suite = _junit(run, "udp_datagrams_uncut")
    assert suite.get("failures") == "1"
    assert suite.find("testcase/failure") is not None


@pytest.mark.parametrize("handler", ["careful_echo.py:CarefulHandler"])
def test_statements_name_the_users_handler(run_kit, handler: str) -> None:
    spec = f"{REPO / 'fixtures' / 'handlers' / handler}"
    run = run_kit("--handler", spec, "--payloads", "text", "--contract", "echo.upper",
                  "--server", "TCPServer")
    assert run.code == 0, run.stdout + run.stderr
    (contract,) = run.results("stdlib+CarefulHandler")["contracts"]
    assert contract["statement"].startswith(f"With the handler {spec}, every client ")
    assert f"With the handler {spec}, every client " in run.stdout
    assert "reference handler" not in run.stdout
