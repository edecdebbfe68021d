"""--handler checks a user's own handler, and finds the tutorial handler's real bug."""

from __future__ import annotations

import re

from tests.conftest import REPO

HANDLERS = REPO / "fixtures" / "handlers"


def test_the_tutorial_handler_splits_a_character_and_cuts_the_echo(run_kit) -> None:
    run = run_kit("--handler", f"{HANDLERS / 'tutorial_echo.py'}:TutorialHandler",
                  "--payloads", "text", "--server", "TCPServer", profile="ci")
    assert run.code == 1, run.stdout + run.stderr
    results = run.results("stdlib+TutorialHandler")
    by_id = {c["id"]: c for c in results["contracts"]}
    assert set(by_id) == {"echo.upper", "eof.ends_handler"}
    echo = by_id["echo.upper"]
    assert echo["outcome"] == "failed"
    # The counterexample splits a multi-byte character between two reads: written in two
    # pieces, or cut by the handler's recv(1024). Either way the echo falls short.
    assert "ClientPlan(" in echo["counterexample"]
    assert re.search(r"received \d+ of \d+ expected bytes", echo["message"])
    assert "--handler" in echo["reproduce"]


def test_a_careful_handler_passes(run_kit) -> None:
    run = run_kit("--handler", f"{HANDLERS / 'careful_echo.py'}:CarefulHandler",
                  "--payloads", "text", "--server", "TCPServer")
    assert run.code == 0, run.stdout + run.stderr


def test_a_handler_that_does_not_import_is_exit_2(run_kit) -> None:
    run = run_kit("--handler", f"{HANDLERS / 'tutorial_echo.py'}:NoSuchHandler")
    assert run.code == 2
    assert "--handler" in run.stderr
