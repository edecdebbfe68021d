"""The report site: built from results.json files alone, and usable in a real browser."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from conformance import cli
from conformance.report_site import main as report
from tests.conftest import BROKEN

CHROMIUM = shutil.which("chromium")


def _write(folder: Path, doc: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _case(server: str, outcome: str, **fields: Any) -> dict[str, Any]:
    return {"server": server, "outcome": outcome, **fields}


def _contract(contract_id: str, outcome: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": contract_id, "statement": f"statement of {contract_id}", "level": "must",
            "reference": "https://docs.python.org/3/library/socketserver.html",
            "outcome": outcome, "cases": cases}


def _results(name: str, contracts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"schema": "socketserver-conformance/results", "version": 1,
            "generated": "2026-01-02T03:04:05+00:00", "profile": "quick",
            "target": {"name": name, "python_version": "3.11.7",
                       "implementation": "cpython"},
            "contracts": contracts, **extra}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_rows_where_targets_disagree_come_first(tmp_path: Path) -> None:
    passing = [_case("TCPServer", "passed")]
    _write(tmp_path / "a", _results("a", [_contract("echo.upper", "passed", passing),
                                          _contract("zz.last", "passed", passing)]))
    _write(tmp_path / "b", _results("b", [
        _contract("echo.upper", "passed", passing),
        _contract("zz.last", "failed", [_case("TCPServer", "failed", message="boom"),
                                        _case("UDPServer", "passed")])]))
    assert report([str(tmp_path)]) == 0
    index = _read(tmp_path / "index.html")
    assert index.index('id="zz.last"') < index.index('id="echo.upper"')
    assert "Targets disagree (1)" in index
    # Only TCPServer fails: the cell says so, and links to the failure's page.
    assert 'href="pages/b/zz.last.html"' in index
    assert "on TCP<wbr>Server" in index


def test_runs_of_one_target_merge_and_missing_contracts_are_not_run(tmp_path: Path) -> None:
    passing = [_case("TCPServer", "passed")]
    # Two CI jobs ran halves of the catalog on one target; a third target ran one contract.
    _write(tmp_path / "job1" / "stdlib", _results("stdlib", [
        _contract("echo.upper", "passed", passing)]))
    _write(tmp_path / "job2" / "stdlib", _results("stdlib", [
        _contract("handler.server", "passed", passing)]))
    _write(tmp_path / "job3" / "other", _results("other", [
        _contract("handler.server", "passed", passing)]))
    out = tmp_path / "site"
    assert report([str(tmp_path), "--out", str(out)]) == 0
    index = _read(out / "index.html")
    assert index.count('<th scope="col"><a href="#target-') == 2
    assert "2 runs merged" in index
    assert "not run" in index


def test_old_partial_results_are_read(tmp_path: Path) -> None:
    # No schema, target, profile, time nor cases: only what the oldest files had.
    _write(tmp_path / "legacy", {"contracts": [
        {"id": "echo.upper", "outcome": "failed", "message": "got b'X'",
         "counterexample": "check(plans=[b'x'])"},
        {"id": "handler.server", "outcome": "passed"},
        {"statement": "no id: ignored"}]})
    assert report([str(tmp_path)]) == 0
    index = _read(tmp_path / "index.html")
    assert "legacy" in index and "unknown" in index
    page = _read(tmp_path / "pages" / "legacy" / "echo.upper.html")
    assert "check(plans=[b&#39;x&#39;])" in page
    assert "no transcript recorded" in page
    assert "no command recorded" in page


def test_expected_failure_shows_its_baseline_entry(tmp_path: Path) -> None:
    message = "expected (eventlet.toml): the hub wakes green threads on close"
    _write(tmp_path / "eventlet", _results("eventlet", [_contract(
        "lifecycle.context_manager", "xfailed",
        [_case("TCPServer", "xfailed", message=message)])]))
    assert report([str(tmp_path)]) == 0
    page = _read(tmp_path / "pages" / "eventlet" / "lifecycle.context_manager.html")
    assert "<code>eventlet.toml</code>" in page
    assert "the hub wakes green threads on close" in page


def test_transcript_is_rendered_and_escaped(tmp_path: Path) -> None:
    transcript = [
        {"t": 0.0, "who": "client 1", "event": "sent", "data": "b'<script>x</script>'"},
        {"t": 0.0021, "who": "handler", "event": "recv(1024)", "data": "'x'"},
        {"t": 0.004, "who": "server", "event": "shutdown_request", "data": None},
        "a malformed event",
    ]
    _write(tmp_path / "t", _results("t", [_contract("echo.upper", "failed", [
        _case("TCPServer", "failed", message="<b>bad</b>", transcript=transcript)])]))
    assert report([str(tmp_path)]) == 0
    page = _read(tmp_path / "pages" / "t" / "echo.upper.html")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;bad&lt;/b&gt;" in page
    assert 'class="side-client"' in page and 'class="side-handler"' in page
    assert "0.0021" in page and "a malformed event" in page
    assert "no transcript recorded" not in page


def test_other_files_are_skipped_and_nothing_found_is_an_error(tmp_path: Path,
                                                               capsys) -> None:
    _write(tmp_path / "mutation", {"schema": "something/else", "contracts": []})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{", encoding="utf-8")
    assert report([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not a socketserver-conformance/results file" in err
    assert "no results.json under" in err
    assert report([str(tmp_path / "missing")]) == 2


def test_cli_dispatches_report(tmp_path: Path) -> None:
    _write(tmp_path / "x", _results("x", [_contract("echo.upper", "passed", [])]))
    assert cli.main(["report", str(tmp_path), "--out", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").is_file()


def _coverage(html: str | None = "coverage/index.html", **extra: Any) -> dict[str, Any]:
    """A results.json ``coverage`` object as docs/results.md describes it."""
    def figures(executed: int, total: int) -> dict[str, Any]:
        return {"executed": executed, "total": total,
                "percent": round(100.0 * executed / total, 1) if total else None}

    files = [
        {"path": "/usr/lib/python3.11/socketserver.py", "lines": figures(171, 300),
         "branches": figures(27, 70), "missing_lines": [150], "missing_branches": [[1, 2]],
         "one_contract_lines": {"count": 5, "by_contract": {
             "echo.upper": [203, 204, 205], "lifecycle.handle_timeout": [281, 282]}}},
        # A second file whose lists results.json cut short: 4 lines, 1 listed.
        {"path": "/src/mypkg/extra.py", "lines": figures(0, 13), "branches": figures(0, 4),
         "missing_lines": [1], "missing_branches": [],
         "one_contract_lines": {"count": 4, "by_contract": {"echo.upper": [9]}}},
    ]
    return {"tool": "coverage.py 7.17.5", "include": ["/src/mypkg/*"], "html": html,
            "data": "coverage-data/.coverage", "error": None,
            "lines": figures(171, 313), "branches": figures(27, 74), "files": files,
            **extra}


def test_coverage_is_shown_and_links_to_the_listing(tmp_path: Path) -> None:
    passing = [_contract("echo.upper", "passed", [_case("TCPServer", "passed")])]
    reports = tmp_path / "reports"
    _write(reports / "covered", _results("covered", passing, coverage=_coverage()))
    listing = reports / "covered" / "coverage" / "index.html"
    listing.parent.mkdir()
    listing.write_text("<html>coverage.py</html>", encoding="utf-8")
    _write(reports / "failed", _results("failed", passing, coverage=_coverage(
        error="coverage combine: No data to combine", lines=None, branches=None,
        files=[])))
    _write(reports / "plain", _results("plain", passing, coverage=None))
    assert report([str(reports)]) == 0
    index = _read(reports / "index.html")
    assert '<section id="coverage">' in index
    assert "171 / 313 (54.6%)" in index and "27 / 74 (36.5%)" in index
    assert "2 files · coverage.py 7.17.5" in index
    # 9 lines one contract alone reaches, 6 of them listed, by contract, most first.
    assert "<b>9</b> lines" in index
    assert "echo.upper 4 · lifecycle.handle_timeout 2 · 3 not listed" in index
    href = 'href="covered/coverage/index.html"'
    assert index.count(href) == 1
    assert (reports / "covered" / "coverage" / "index.html").is_file()
    # A run whose coverage.py produced no figures says why; no listing file: no link.
    assert "no figures: coverage combine: No data to combine" in index
    missing = reports / "failed" / "coverage" / "index.html"
    assert f"coverage.py HTML not found:</span> <code>{missing}</code>" in index
    # Targets without coverage get no row.
    assert 'id="coverage-covered"' in index and 'id="coverage-failed"' in index
    assert 'id="coverage-plain"' not in index

    # Built elsewhere: the listing is not under the site, so the page says where it is.
    site = tmp_path / "site"
    assert report([str(reports), "--out", str(site)]) == 0
    index = _read(site / "index.html")
    assert "171 / 313 (54.6%)" in index and href not in index
    assert ("coverage.py HTML not under the site&#39;s folder:</span> "
            f"<code>{listing}</code>") in index

    # Inside a site built higher up, the link climbs down the folders to the listing.
    assert report([str(tmp_path)]) == 0
    index = _read(tmp_path / "index.html")
    assert 'href="reports/covered/coverage/index.html"' in index
    assert (tmp_path / "reports" / "covered" / "coverage" / "index.html").is_file()


def test_without_coverage_the_index_is_unchanged(tmp_path: Path) -> None:
    passing = [_contract("echo.upper", "passed", [_case("TCPServer", "passed")])]
    # An older file has no coverage key; a run without --coverage has it null.
    _write(tmp_path / "absent" / "t", _results("t", passing))
    _write(tmp_path / "null" / "t", _results("t", passing, coverage=None))
    built = []
    for folder in ("absent", "null"):
        assert report([str(tmp_path / folder)]) == 0
        index = _read(tmp_path / folder / "index.html")
        assert 'id="coverage' not in index and "coverage.py" not in index
        assert "meter" not in index.split("</style>", 1)[1]
        built.append(re.sub(r"Built [^<]* by", "Built by", index))
    assert built[0] == built[1]


def _kit_results(run_kit) -> tuple[Path, list[str]]:
    """Real results.json files from small kit runs, and the targets they are about."""
    runs = [("stdlib", ("--contract", "handler.*", "--server", "TCPServer", "--coverage"), 0),
            ("recv_text_mode", ("--impl", str(BROKEN / "recv_text_mode.py"),
                                "--contract", "echo.upper", "--server", "TCPServer"), 1)]
    if importlib.util.find_spec("eventlet") is not None:
        # Its shipped baseline lists this contract: an expected failure, with a reason.
        runs.append(("eventlet", ("--target", "eventlet",
                                  "--contract", "lifecycle.context_manager",
                                  "--server", "TCPServer"), 0))
    report_dir = None
    for _, args, code in runs:
        run = run_kit(*args)
        assert run.code == code, run.stdout[-3000:] + run.stderr[-3000:]
        report_dir = run.report_dir
    assert report_dir is not None
    return report_dir, [name for name, _, _ in runs]


def test_site_from_kit_runs_in_chromium(run_kit, tmp_path: Path) -> None:
    report_dir, targets = _kit_results(run_kit)
    assert report([str(report_dir)]) == 0
    index = report_dir / "index.html"
    failure = report_dir / "pages" / "recv_text_mode" / "echo.upper.html"
    assert failure.is_file()
    # The stdlib's run measured coverage: its figures, and a link to coverage.py's listing.
    listing = report_dir / "stdlib" / "coverage" / "index.html"
    stdlib = json.loads(_read(report_dir / "stdlib" / "results.json"))["coverage"]
    lines = stdlib["lines"]
    assert listing.is_file()
    shown = _read(index)
    assert f'{lines["executed"]} / {lines["total"]} ({lines["percent"]:g}%)' in shown
    assert shown.count('href="stdlib/coverage/index.html"') == 1
    assert 'id="coverage-recv_text_mode"' not in shown
    if "eventlet" in targets:
        baseline = _read(report_dir / "pages" / "eventlet" / "lifecycle.context_manager.html")
        assert "<code>eventlet.toml</code>" in baseline
    # The site is checked without a browser above; what follows needs one.
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: the site was built, not seen in a browser")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed: the site was built, not seen in a browser")
    from playwright.sync_api import sync_playwright

    counterexample = json.loads(_read(report_dir / "recv_text_mode" / "results.json"))[
        "contracts"][0]["cases"][0]["counterexample"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            # The pages have no script: everything is checked with JavaScript off.
            page = browser.new_page(java_script_enabled=False,
                                    viewport={"width": 1280, "height": 900})
            page.goto(index.as_uri())
            headers = page.locator("table.matrix thead th").all_inner_texts()
            for target in targets:
                assert any(h.startswith(target) for h in headers), (target, headers)
            shot = tmp_path / "report-index.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            page.get_by_role("link", name="coverage.py HTML").click()
            page.wait_for_load_state()
            assert page.url == listing.as_uri()
            page.goto(index.as_uri())
            page.locator("td.cell.v-failed a").first.click()
            page.wait_for_load_state()
            assert page.url == failure.as_uri()
            shown = page.locator("pre.counterexample").first
            assert shown.is_visible() and shown.inner_text().strip() == counterexample.strip()
            reproduce = page.locator("pre.reproduce").first
            assert reproduce.is_visible()
            assert "python -m conformance" in reproduce.inner_text()
            assert page.get_by_role("heading", name="Transcript").first.is_visible()
            # The failing example's wire log: the client's bytes and the handler's steps.
            transcript = page.locator("table.transcript").first
            assert transcript.is_visible()
            assert "client 1" in transcript.inner_text()
            assert "handler 1" in transcript.inner_text()
            shot = tmp_path / "report-failure.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            # A narrow screen: no page-wide sideways scrolling; the matrix scrolls in its
            # own box with the contract column stuck to its left edge.
            narrow = browser.new_page(viewport={"width": 400, "height": 800})
            for url in (index.as_uri(), failure.as_uri()):
                narrow.goto(url)
                assert narrow.evaluate(
                    "document.documentElement.scrollWidth <= window.innerWidth"), url
            narrow.goto(index.as_uri())
            assert narrow.locator("table.matrix th.contract").first.evaluate(
                "e => getComputedStyle(e).position") == "sticky"
            shot = tmp_path / "report-index-narrow.png"
            narrow.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        finally:
            browser.close()
