"""Helpers for the kit's self-tests: run the kit as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
BROKEN = REPO / "fixtures" / "broken"
MISBEHAVING = REPO / "fixtures" / "misbehaving"
# Every run of the kit in the self-tests is bounded; a hung kit fails the self-test.
KIT_TIMEOUT = 900
# Contract tests mostly wait on sockets, not on the CPU: a whole-catalog run uses this many
# xdist workers even on a 2-core machine.
CATALOG_WORKERS = "3"
RUN_MARKER = "CONFORMANCE_SELFTEST_RUN"
# Hypothesis' storage for every kit the self-tests run (the profiles keep no example
# database; what is left is its Unicode table, slow to build in every fresh folder).
HYPOTHESIS_STORAGE = Path(tempfile.gettempdir()) / "socketserver-conformance-selftests"


@dataclass
class KitRun:
    """One finished run of ``python -m conformance``."""

    code: int
    stdout: str
    stderr: str
    report_dir: Path
    marker: str

    def results(self, target: str) -> dict[str, Any]:
        with open(self.report_dir / target / "results.json", encoding="utf-8") as fp:
            return json.load(fp)

    def outcomes(self, target: str) -> dict[str, str]:
        return {c["id"]: c["outcome"] for c in self.results(target)["contracts"]}


def leftover_processes(marker: str) -> list[int]:
    """Processes still carrying a run's marker in their environment (Linux /proc)."""
    needle = f"{RUN_MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kit(folder: Path, *args: str, profile: str = "quick", cwd: Path | None = None,
        workers: str | None = None, timeout: float = KIT_TIMEOUT) -> KitRun:
    """Run ``python -m conformance`` with these arguments in ``folder`` (or ``cwd``), as a
    user would; its reports go to ``folder/reports``."""
    report_dir = folder / "reports"
    marker = uuid.uuid4().hex
    # Hypothesis builds its Unicode table once per storage folder: one for every run here.
    env = {"HYPOTHESIS_STORAGE_DIRECTORY": str(HYPOTHESIS_STORAGE), **os.environ,
           RUN_MARKER: marker}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    completed = subprocess.run(
        [sys.executable, "-m", "conformance", "--report-dir", str(report_dir),
         "--hypothesis-profile", profile, *args, *(["-n", workers] if workers else [])],
        capture_output=True, text=True, timeout=timeout, env=env,
        cwd=cwd or folder, stdin=subprocess.DEVNULL,
    )
    return KitRun(completed.returncode, completed.stdout, completed.stderr, report_dir,
                  marker)


@pytest.fixture
def run_kit(tmp_path: Path):
    """Run the kit with these arguments; reports go to a temporary folder."""

    def run(*args: str, profile: str = "quick", cwd: Path | None = None,
            whole_catalog: bool = False) -> KitRun:
        return kit(tmp_path, *args, profile=profile, cwd=cwd,
                   workers=CATALOG_WORKERS if whole_catalog else None)

    return run
