"""What a harness measures with ``--coverage``, where it saves it, and the check that the
target's interpreter can measure at all."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from conformance import bounds

# Under a target's report folder: the data every harness and forked child saves, one
# parallel file each, then the combined file and coverage.py's JSON report.
DATA_FOLDER = "coverage-data"
DATA_FILE = ".coverage"
# The oldest coverage.py with dynamic contexts, which the agent needs too.
MINIMUM_VERSION = (5, 0)
_WILDCARDS = ("*", "?", "[")


class CoverageError(Exception):
    """--coverage cannot run as asked: the message is one line saying what to do."""


@dataclass(frozen=True)
class Measurement:
    """Where the harnesses of one target save what they measured (``folder``), and the
    globs that widen it beyond the implementation's own file (``include``, absolute or
    starting with a wildcard, as coverage.py reads them)."""

    folder: str
    include: tuple[str, ...] = ()

    @classmethod
    def fresh(cls, report_folder: str, include: tuple[str, ...] = ()) -> Measurement:
        """The measurement of a target whose reports go to ``report_folder``, its data
        folder emptied: a previous run's data must not count in this one."""
        folder = os.path.join(report_folder, DATA_FOLDER)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        return cls(folder, include)

    @property
    def data_file(self) -> str:
        return os.path.join(self.folder, DATA_FILE)

    def harness_args(self) -> list[str]:
        """The agent's arguments that make it measure (see its ``measuring`` module)."""
        args = ["--coverage-data", self.data_file]
        for pattern in self.include:
            args += ["--coverage-include", pattern]
        return args


def absolute_globs(patterns: tuple[str, ...], folder: str) -> tuple[str, ...]:
    """``patterns`` as coverage.py would read them started in ``folder``: one that starts
    with a wildcard stays as it is, another is a path relative to ``folder``. (The harness
    runs elsewhere than the kit was started, an xdist worker's harness included.)"""
    return tuple(pattern if pattern.startswith(_WILDCARDS)
                 else os.path.join(folder, os.path.expanduser(pattern))
                 for pattern in patterns)


def context(contract_id: str, server: str) -> str:
    """The coverage context of a contract checked on a server class: what its servers run
    is recorded under it, ``echo.upper[TCPServer]``."""
    return f"{contract_id}[{server}]"


def contract_of(label: str) -> str | None:
    """The contract id of a context ``context()`` made; None for the empty context (what
    ran outside any contract: the implementation's import)."""
    return label.partition("[")[0] or None


def require_coverage(interpreter: str) -> str:
    """The version of coverage.py that ``interpreter`` imports; CoverageError, saying what
    to install, when it has none or one older than MINIMUM_VERSION."""
    try:
        done = subprocess.run([interpreter, "-c", "import coverage; print(coverage.__version__)"],
                              capture_output=True, text=True, timeout=bounds.COVERAGE_CHECK,
                              stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CoverageError(f"--coverage: {interpreter} did not say which coverage.py it "
                            f"has ({exc})") from None
    version = done.stdout.strip()
    if done.returncode != 0 or not version:
        raise CoverageError(f"--coverage: coverage.py is not installed for {interpreter}; "
                            f"install it with: {interpreter} -m pip install coverage")
    if _release(version) < MINIMUM_VERSION:
        minimum = ".".join(map(str, MINIMUM_VERSION))
        raise CoverageError(f"--coverage: coverage.py {version} for {interpreter} is older "
                            f"than {minimum}; upgrade it with: {interpreter} -m pip install "
                            "--upgrade coverage")
    return version


def _release(version: str) -> tuple[int, ...]:
    """(major, minor): 7.4.0 and 7.4b1 are (7, 4)."""
    return tuple(int(re.match(r"\d*", part).group() or 0)  # type: ignore[union-attr]
                 for part in version.split(".")[:2])
