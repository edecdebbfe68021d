"""The kit passes on the standard library of every interpreter it can find here, and on the
running interpreter's it executes every line and branch of socketserver.py that can run on
Linux."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

from conformance.contracts.catalog import catalog
from tests import unreachable


def _version(python: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return tuple(int(part) for part in out.split())


def other_interpreters() -> list[str]:
    """The oldest and the newest CPython 3.6+ managed by pyenv, and PyPy3 on PATH, other
    than the running one. (`tox -e matrix` runs every version.)"""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    cpythons = []
    for python in glob.glob(os.path.join(root, "versions", "*", "bin", "python3")):
        version = _version(python)
        if version and version >= (3, 6) and version != sys.version_info[:2]:
            cpythons.append((version, python))
    cpythons.sort()
    found = [python for _, python in cpythons[:1] + cpythons[-1:]]
    pypy = shutil.which("pypy3")
    if pypy and _version(pypy):
        found.append(pypy)
    return sorted(set(found))


def test_stdlib_of_the_running_interpreter(run_kit) -> None:
    # One whole-catalog run checks both the verdicts and, measured with --coverage, that
    # every line and branch of socketserver.py runs but those tests/stdlib_unreachable.toml
    # lists for this CPython version (on a version it has no section for, the test says so
    # and skips, the verdicts checked).
    run = run_kit("--coverage", whole_catalog=True)
    assert run.code == 0, run.stdout + run.stderr
    outcomes = run.outcomes("stdlib")
    assert set(outcomes) == {c.id for c in catalog()}
    assert set(outcomes.values()) <= {"passed", "skipped"}, outcomes
    assert "passed" in outcomes.values()
    results = run.results("stdlib")
    assert results["version"] == 2
    assert results["target"]["python_version"].startswith(
        "{}.{}.".format(*sys.version_info[:2]))
    assert (run.report_dir / "stdlib" / "junit.xml").is_file()
    assert f"{len(outcomes)} contracts: " in run.stdout
    (measured,) = results["coverage"]["files"]
    version = "{}.{}".format(*sys.version_info[:2])
    entries = unreachable.listed(version)
    if entries is None:
        pytest.skip(f"{unreachable.LIST.name} has no section for CPython {version}: "
                    "the verdicts were checked, the coverage of socketserver.py was not")
    problems = unreachable.departures(measured, entries)
    assert not problems, "\n".join(problems)


def test_at_least_two_other_interpreters_are_here() -> None:
    found = other_interpreters()
    if len(found) < 2:
        pytest.skip(f"only {len(found)} other interpreter(s) on this machine: {found}")


@pytest.mark.parametrize("python", other_interpreters() or [
    pytest.param(None, marks=pytest.mark.skip(reason="no other interpreter on this machine"))])
def test_stdlib_of_another_interpreter(run_kit, python: str) -> None:
    run = run_kit("--python", python, whole_catalog=True)
    assert run.code == 0, run.stdout + run.stderr
    (target,) = [p.name for p in run.report_dir.iterdir()]
    assert target.startswith(("stdlib@cpython3.", "stdlib@pypy3."))
    assert set(run.outcomes(target).values()) <= {"passed", "skipped"}, run.outcomes(target)
