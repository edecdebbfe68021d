"""The tools under tools/ start: each one with a command line answers --help (a tool that
stops at its own argument parser is found here, not by the next person who needs it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

TOOLS = sorted(path.name for path in (REPO / "tools").glob("*.py")
               if "argparse" in path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("tool", TOOLS)
def test_the_tool_answers_help(tool: str) -> None:
    run = subprocess.run([sys.executable, str(REPO / "tools" / tool), "--help"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: "), run.stdout
