"""The kit as users get it: a wheel built from this checkout, installed with pip into a fresh
virtualenv, run from a folder outside the checkout. The wheel must carry the agent package,
the shipped baselines, kit.ini and the report site's templates; `--target eventlet` then
finds its baseline inside site-packages and holds to it, and `--coverage` works with what
pip installed (coverage.py is one of the kit's dependencies).

Slow (a wheel, a virtualenv, pip installing pytest, Hypothesis, xdist and eventlet): one
virtualenv serves the whole module. pip needs PyPI (or the index pip is configured with);
without a network the tests are skipped, saying so, never passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import conformance
from tests.conftest import REPO

BUILD_TIMEOUT = 300
VENV_TIMEOUT = 180
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 600
# The contracts eventlet's shipped baseline lists: the run checks exactly those.
EVENTLET_CONTRACTS = ("lifecycle.context_manager", "resources.block_on_close",
                      "resources.children_reaped_elsewhere")
# What pip says when it cannot reach the index.
_OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|"
                      r"Network is unreachable|Failed to establish a new connection|"
                      r"No matching distribution found|Could not find a version")
# What the wheel must hold besides the modules: the package data the kit reads at run time.
PACKAGE_DATA = ("conformance/kit.ini", "conformance/baselines/eventlet.toml",
                "conformance/harness/agent/__main__.py", "conformance/harness/agent/main.py",
                "conformance/harness/agent/measuring.py",
                "conformance/report_site/templates/index.html.j2")
# Left out of the copy the wheel is built from: an in-tree build writes build/ and
# *.egg-info, which must not land in the checkout.
_NOT_SOURCES = shutil.ignore_patterns(".git", ".tox", ".venv", "build", "dist", "*.egg-info",
                                      "__pycache__", ".hypothesis", ".pytest_cache",
                                      ".ruff_cache", "reports")


def _clean_env() -> dict[str, str]:
    """The environment of a user's shell: nothing that points Python at this checkout."""
    env = {**os.environ}
    for name in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "CONFORMANCE_PROFILE"):
        env.pop(name, None)
    return env


def _run(command: list[str], timeout: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=_clean_env(), stdin=subprocess.DEVNULL, check=False)


def _pip(command: list[str], timeout: float, cwd: Path) -> None:
    """Run a pip command; skip when it failed for want of a network, fail otherwise."""
    done = _run(command, timeout, cwd)
    if done.returncode == 0:
        return
    output = done.stdout + done.stderr
    offline = _OFFLINE.search(output)
    if offline:
        pytest.skip(f"pip cannot reach its package index ({offline.group()}): "
                    f"pip {' '.join(arg for arg in command if arg in ('wheel', 'install'))} "
                    "needs a network")
    pytest.fail(f"{' '.join(command)} failed:\n{output[-3000:]}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built from a copy of it."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCES)
    _pip([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"),
          str(source)], BUILD_TIMEOUT, work)
    built = sorted((work / "dist").glob("socketserver_conformance-*.whl"))
    assert len(built) == 1, built
    return built[0]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtualenv where pip installed the wheel and eventlet."""
    work = tmp_path_factory.mktemp("venv")
    # This interpreter's pip installs into it (pip --python, pip 22.3 and newer): faster
    # than bootstrapping a pip of the virtualenv's own, and the same installation.
    done = _run([sys.executable, "-m", "venv", "--without-pip", str(work / "venv")],
                VENV_TIMEOUT, work)
    assert done.returncode == 0, done.stderr
    python = work / "venv" / "bin" / "python"
    _pip([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
          "--disable-pip-version-check", str(wheel), "eventlet"], INSTALL_TIMEOUT, work)
    return python


def test_the_wheel_carries_the_package_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert set(PACKAGE_DATA) <= names, set(PACKAGE_DATA) - names


def test_the_installed_kit_says_its_version(installed: Path, tmp_path: Path) -> None:
    done = _run([str(installed), "-m", "conformance", "--version"], RUN_TIMEOUT, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"socketserver-conformance {conformance.__version__} "), (
        done.stdout)


def test_the_installed_kit_holds_eventlet_to_its_shipped_baseline(installed: Path,
                                                                   tmp_path: Path) -> None:
    selection = [word for contract in EVENTLET_CONTRACTS for word in ("--contract", contract)]
    done = _run([str(installed), "-m", "conformance", "--target", "eventlet", *selection,
                 "--hypothesis-profile", "quick", "-n", "2"], RUN_TIMEOUT, tmp_path)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    with open(tmp_path / "reports" / "eventlet" / "results.json", encoding="utf-8") as fp:
        results = json.load(fp)
    baseline = Path(results["baseline"]["path"])
    # The shipped baseline, as installed: not this checkout's copy.
    assert baseline.parts[-4:] == ("site-packages", "conformance", "baselines",
                                   "eventlet.toml"), baseline
    assert baseline.is_relative_to(installed.parent.parent), baseline
    assert {c["id"] for c in results["contracts"]} == set(EVENTLET_CONTRACTS)


def test_the_installed_kit_measures_coverage_out_of_the_box(installed: Path,
                                                            tmp_path: Path) -> None:
    # coverage.py comes with the kit: the default target, the kit's own interpreter, has it.
    done = _run([str(installed), "-m", "conformance", "--coverage", "--contract", "echo.upper",
                 "--server", "TCPServer", "--hypothesis-profile", "quick"], RUN_TIMEOUT,
                tmp_path)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    with open(tmp_path / "reports" / "stdlib" / "results.json", encoding="utf-8") as fp:
        coverage = json.load(fp)["coverage"]
    assert coverage["error"] is None and coverage["lines"]["executed"] > 0, coverage
    assert (tmp_path / "reports" / "stdlib" / "coverage" / "index.html").is_file()
