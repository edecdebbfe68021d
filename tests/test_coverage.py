"""--coverage: coverage.py in the harness measures what the implementation executed, forked
children and every harness included; results.json, the terminal and coverage.py's HTML
listing show it; a target interpreter without coverage.py is bad usage, saying what to
install. The first tests read coverage.py's JSON as the kit does, without running it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.coverage.figures import CoverageResults, Figures, FileCoverage
from conformance.coverage.measurement import Measurement, context
from conformance.harness import Harness
from conformance.presets import CPYTHON_VERSIONS, find_cpython
from conformance.targets import Target, TargetError
from tests.conftest import BROKEN, REPO

CONTRACTS = ("echo.upper", "lifecycle.server_close")
SERVERS = ("TCPServer", "ForkingTCPServer")


def _entry(contexts: dict[str, list[str]]) -> dict[str, Any]:
    return {"summary": {"covered_lines": 3, "num_statements": 4, "covered_branches": 1,
                        "num_branches": 2},
            "missing_lines": [9], "missing_branches": [[5, 9]], "contexts": contexts}


def test_lines_only_one_contract_reaches_whatever_its_server_classes() -> None:
    contexts = {"1": [""],
                "5": [context("echo.upper", "TCPServer"), context("echo.upper", "UDPServer")],
                "6": [context("echo.upper", "TCPServer"), context("eof.ends_handler", "TCPServer")],
                "7": ["", context("eof.ends_handler", "TCPServer")]}
    found = FileCoverage.from_report("impl.py", _entry(contexts))
    assert found.one_contract == {"echo.upper": (5,), "eof.ends_handler": (7,)}
    assert found.lines == Figures(3, 4) and found.lines.percent == 75.0
    assert found.to_json()["missing_branches"] == [[5, 9]]
    assert found.to_json()["one_contract_lines"]["count"] == 2


def test_results_add_up_the_files_and_name_paths_from_the_report_folder(tmp_path: Path) -> None:
    report = {"meta": {"version": "7.4.0"},
              "files": {"a.py": _entry({}), "b.py": _entry({})}}
    results = CoverageResults.from_report(report, include=("/src/*",),
                                          html=str(tmp_path / "coverage" / "index.html"),
                                          data=str(tmp_path / "coverage-data" / ".coverage"))
    shown = results.to_json(str(tmp_path))
    assert shown["lines"] == {"executed": 6, "total": 8, "percent": 75.0}
    assert shown["branches"] == {"executed": 2, "total": 4, "percent": 50.0}
    assert shown["html"] == "coverage/index.html" and shown["tool"] == "coverage.py 7.4.0"
    assert results.summary_line(str).startswith("coverage: 6 of 8 lines (75%), 2 of 4 "
                                                "branches (50%) of 2 files: ")


def _forking_child_lines(source: Path) -> dict[str, int]:
    """The lines of ForkingMixIn.process_request's child branch (after os.fork() returned
    0) that call finish_request() and os._exit(): only a forked child runs them."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    mixin = next(node for node in ast.walk(tree)
                 if isinstance(node, ast.ClassDef) and node.name == "ForkingMixIn")
    method = next(node for node in mixin.body
                  if isinstance(node, ast.FunctionDef) and node.name == "process_request")
    fork_test = next(node for node in method.body if isinstance(node, ast.If))
    child = ast.Module(body=fork_test.orelse, type_ignores=[])
    return {node.func.attr: node.lineno for node in ast.walk(child)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("finish_request", "_exit")}


def test_coverage_of_the_stdlib_counts_forked_children(run_kit) -> None:
    selection = [word for contract in CONTRACTS for word in ("--contract", contract)]
    selection += [word for server in SERVERS for word in ("--server", server)]
    run = run_kit("--coverage", *selection, "-n", "2")
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = run.results("stdlib")
    coverage = results["coverage"]
    assert coverage["error"] is None, coverage
    (measured,) = coverage["files"]
    module_file = Path(results["target"]["module_file"])
    assert Path(measured["path"]).resolve() == module_file.resolve()
    for figures in (coverage["lines"], coverage["branches"]):
        # Two contracts run much of socketserver.py, far from all of it.
        assert 0 < figures["executed"] < figures["total"], figures
        assert 25 < figures["percent"] < 95, figures
    missing = set(measured["missing_lines"])
    child = _forking_child_lines(module_file)
    assert set(child) == {"finish_request", "_exit"}, child
    assert not missing & set(child.values()), f"the forked child's lines {child} not counted"
    assert set(measured["one_contract_lines"]["by_contract"]) <= set(CONTRACTS)
    report_folder = run.report_dir / "stdlib"
    assert (report_folder / coverage["html"]).is_file()
    listing = next((report_folder / "coverage").glob("*socketserver_py.html")).read_text(
        encoding="utf-8")
    assert "echo.upper[ForkingTCPServer]" in listing
    summary = next(line for line in run.stdout.splitlines() if line.startswith("coverage: "))
    lines = coverage["lines"]
    assert summary.startswith(f"coverage: {lines['executed']} of {lines['total']} lines ")
    assert summary.endswith(" of socketserver.py: reports/stdlib/coverage/index.html")


def test_coverage_include_widens_to_more_files_and_survives_a_failing_run(run_kit) -> None:
    # The broken implementation imports its helper module from beside it.
    run = run_kit("--impl", str(BROKEN / "recv_text_mode.py"), "--contract", "echo.upper",
                  "--server", "ThreadingTCPServer", "--coverage",
                  "--coverage-include", "fixtures/broken/_variants.py", cwd=REPO)
    assert run.code == 1, run.stdout[-3000:] + run.stderr[-3000:]
    coverage = run.results("recv_text_mode")["coverage"]
    names = sorted(Path(measured["path"]).name for measured in coverage["files"])
    assert names == ["_variants.py", "recv_text_mode.py"], coverage
    assert coverage["include"] == [str(BROKEN / "_variants.py")]
    assert all(measured["lines"]["executed"] for measured in coverage["files"])


def _without_coverage() -> str | None:
    """An interpreter here that has no coverage.py: PyPy3 or a pyenv CPython, if any."""
    candidates = [shutil.which("pypy3")] + [find_cpython(v) for v in CPYTHON_VERSIONS]
    for python in filter(None, candidates):
        done = subprocess.run([python, "-c", "import coverage"], capture_output=True,
                              timeout=60, check=False)
        if done.returncode != 0:
            return python
    return None


@pytest.fixture(scope="module")
def python_without_coverage() -> str:
    python = _without_coverage()
    if python is None:
        pytest.skip("every interpreter here has coverage.py")
    return python


def test_a_target_without_coverage_py_is_bad_usage_saying_what_to_install(
        run_kit, python_without_coverage: str) -> None:
    run = run_kit("--coverage", "--python", python_without_coverage,
                  "--contract", "echo.upper")
    assert run.code == 2, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stderr.strip().splitlines() == [
        f"python -m conformance: error: --coverage: coverage.py is not installed for "
        f"{python_without_coverage}; install it with: {python_without_coverage} -m pip "
        "install coverage"]


def test_the_harness_imports_coverage_py_only_when_measuring(
        python_without_coverage: str, tmp_path: Path) -> None:
    target = Target(python=python_without_coverage)
    Harness(target).close()
    with pytest.raises(TargetError, match=r"^--coverage: .*coverage\.py is not installed"):
        Harness(target, Measurement.fresh(str(tmp_path)))


def test_the_agent_measures_nothing_it_was_not_asked_to(tmp_path: Path) -> None:
    # The stdlib's module file, and no file of the agent's or the kit's.
    Harness(Target(), Measurement.fresh(str(tmp_path))).close()
    (saved,) = (tmp_path / "coverage-data").glob(".coverage.*")
    files = subprocess.run(
        [sys.executable, "-c", "import coverage, sys; data = coverage.CoverageData("
         "sys.argv[1]); data.read(); print(*sorted(data.measured_files()), sep='\\n')",
         str(saved)], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert [Path(name).name for name in files] == ["socketserver.py"], files
