"""The site: the matrix of contracts against targets, and a page per failure, rendered with
the package's Jinja2 templates into self-contained HTML files."""

from __future__ import annotations

import datetime
import os
import re
import shutil
import urllib.parse
from dataclasses import dataclass
from typing import Any

from conformance.report_site.model import (
    DETAILED,
    LABELS,
    VERDICTS,
    Column,
    Contract,
    Coverage,
    Result,
    Run,
)

PAGES = "pages"
# Marks a pages folder as this tool's own, so a rebuild may clear stale pages from it.
_MARKER = ".conformance-report-site"
# Word boundaries in CamelCase (ThreadingTCPServer: Threading, TCP, Server) and after the
# dots and underscores of contract ids (concurrency.stalled_client).
_WORDS = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[._])(?=\w)")


@dataclass(frozen=True)
class Cell:
    """One contract on one target, as the matrix shows it."""

    column: Column
    result: Result | None
    href: str | None

    @property
    def verdict(self) -> str:
        return self.result.outcome if self.result else "not run"

    @property
    def label(self) -> str:
        return LABELS.get(self.verdict, self.verdict)

    @property
    def note(self) -> str | None:
        """What sets this cell apart from its plain verdict."""
        if self.result is None:
            return None
        if self.result.xpassed:
            return "unexpected pass: the baseline entry is stale"
        if self.verdict in ("failed", "error") and not self.result.blocking:
            return "not blocking: should-level, run without --strict"
        if self.verdict == "skipped" and self.result.worst:
            # Why, in short: "not applicable: new in Python 3.7, the target runs 3.6.15".
            lines = (self.result.worst[0].message or "").strip().splitlines()
            reason = lines[0].removeprefix("Skipped: ") if lines else ""
            return reason if len(reason) <= 64 else reason[:63] + "…"
        return None

    @property
    def servers(self) -> str | None:
        return self.result.differing_servers() if self.result else None

    @property
    def tooltip(self) -> str:
        if self.result is None:
            return f"{self.column.name}: not in its results"
        worst = self.result.worst
        message = (worst[0].message or "").strip().splitlines() if worst else []
        return f"{self.column.name}: {self.label}" + (f": {message[0]}" if message else "")


@dataclass(frozen=True)
class Row:
    contract: Contract
    cells: tuple[Cell, ...]

    @property
    def disagree(self) -> bool:
        """Whether the targets that ran the contract reached different verdicts; a skip (not
        applicable, or a class the target lacks) is no verdict."""
        return len({c.verdict for c in self.cells
                    if c.verdict not in ("not run", "skipped")}) > 1


@dataclass(frozen=True)
class Section:
    """Rows under a heading, grouped by family."""

    title: str | None
    families: tuple[tuple[str, tuple[Row, ...]], ...]

    @property
    def size(self) -> int:
        return sum(len(rows) for _, rows in self.families)


@dataclass(frozen=True)
class Listing:
    """Where a run's coverage.py HTML listing is, seen from the site: ``href`` (relative
    to the site's index.html, URL-quoted) only when the file exists under the site's
    folder; otherwise None, ``problem`` says why and ``path`` is where it was looked for
    (absolute; None when results.json names no listing)."""

    href: str | None
    path: str | None
    problem: str | None = None

    @classmethod
    def find(cls, coverage: Coverage, out: str) -> Listing:
        """The listing of ``coverage`` for a site built in ``out``, as the file system has
        it now: linked only if it is a file under ``out``."""
        path = coverage.html_path
        if path is None:
            return cls(None, None, "none recorded")
        absolute = os.path.abspath(path)
        if not os.path.isfile(path):
            return cls(None, absolute, "not found")
        if not _inside(path, out):
            return cls(None, absolute, "not under the site's folder")
        relative = os.path.relpath(path, out).replace(os.sep, "/")
        return cls(urllib.parse.quote(relative), absolute)


@dataclass(frozen=True)
class CoverageRow:
    """One run's coverage, as the index's coverage table shows it; ``origin`` names the
    run's results.json when its target has several runs with coverage, else None."""

    column: Column
    coverage: Coverage
    listing: Listing
    origin: str | None = None
    number: int = 1

    @property
    def anchor(self) -> str:
        """The row's id, unique in the page: ``coverage-<slug>``, then ``-2``, ``-3`` for
        a target's further runs."""
        suffix = f"-{self.number}" if self.number > 1 else ""
        return f"coverage-{self.column.slug}{suffix}"


def coverage_rows(columns: list[Column], out: str) -> list[CoverageRow]:
    """A row per run that measured coverage, in the targets' order; targets without
    coverage get none."""
    built = []
    for column in columns:
        measured = column.coverage_runs
        for n, run in enumerate(measured, start=1):
            assert run.coverage is not None
            origin = _shown([run], out)[0] if len(measured) > 1 else None
            built.append(CoverageRow(column, run.coverage, Listing.find(run.coverage, out),
                                     origin, n))
    return built


def page_path(column: Column, contract_id: str) -> str:
    """Where the page of a failure lives, relative to the site's index.html."""
    return f"{PAGES}/{column.slug}/{contract_id}.html"


def rows(columns: list[Column]) -> list[Row]:
    """One row per contract found in any column, sorted by id."""
    contracts: dict[str, Contract] = {}
    for column in columns:
        for result in column.results.values():
            contracts.setdefault(result.contract.id, result.contract)
    built = []
    for contract_id in sorted(contracts):
        cells = []
        for column in columns:
            result = column.results.get(contract_id)
            detailed = result is not None and result.outcome in DETAILED
            cells.append(Cell(column, result,
                              page_path(column, contract_id) if detailed else None))
        built.append(Row(contracts[contract_id], tuple(cells)))
    return built


def sections(all_rows: list[Row]) -> list[Section]:
    """Rows where targets disagree first, then the rest; each part grouped by family."""

    def by_family(part: list[Row]) -> tuple[tuple[str, tuple[Row, ...]], ...]:
        families: dict[str, list[Row]] = {}
        for row in part:
            families.setdefault(row.contract.family, []).append(row)
        return tuple((family, tuple(rs)) for family, rs in sorted(families.items()))

    disagree = [r for r in all_rows if r.disagree]
    agree = [r for r in all_rows if not r.disagree]
    if not disagree:
        return [Section(None, by_family(agree))]
    parts = [Section("Targets disagree", by_family(disagree))]
    if agree:
        parts.append(Section("Targets agree", by_family(agree)))
    return parts


def bar(counts: dict[str, int]) -> list[dict[str, Any]]:
    """The stacked bar's segments: verdict, count, and x and width in percent."""
    total = sum(counts.values()) or 1
    segments, x = [], 0.0
    for verdict in VERDICTS:
        count = counts.get(verdict, 0)
        if count:
            width = 100.0 * count / total
            segments.append({"verdict": verdict, "label": LABELS[verdict], "count": count,
                             "x": round(x, 3), "width": round(width, 3)})
            x += width
    return segments


def when(stamp: datetime.datetime | None) -> str:
    if stamp is None:
        return "unknown"
    return stamp.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def breakable(text: str) -> Any:
    """``text`` escaped, with line-break opportunities between its words: a narrow cell
    wraps "ThreadingUnixStreamServer" as Threading/Unix/Stream/Server, never mid-word."""
    from markupsafe import Markup, escape

    return Markup("<wbr>").join(escape(part) for part in _WORDS.split(text))


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance.report_site", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["when"] = when
    env.filters["breakable"] = breakable
    env.globals.update(VERDICTS=VERDICTS, LABELS=LABELS)
    return env


def _clear_pages(folder: str) -> None:
    if os.path.isfile(os.path.join(folder, _MARKER)):
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, _MARKER), "w", encoding="utf-8") as marker:
        marker.write("Built by `python -m conformance report`; rebuilt from scratch each time.\n")


def build(runs: list[Run], columns: list[Column], out: str) -> list[str]:
    """Write index.html and a page per failure, error and expected failure under ``out``;
    returns the paths written, index.html first."""
    env = _environment()
    all_rows = rows(columns)
    ids = [row.contract.id for row in all_rows]
    built_at = datetime.datetime.now(datetime.timezone.utc)
    common = {"built": when(built_at), "has": {
        "platform": any(r.platform for r in runs),
        "versions": any(r.kit_version or r.packages for r in runs)}}
    os.makedirs(out, exist_ok=True)
    _clear_pages(os.path.join(out, PAGES))
    index = os.path.join(out, "index.html")
    targets = [{"column": c, "counts": c.counts(ids), "bar": bar(c.counts(ids))}
               for c in columns]
    written = [index]
    _write(index, env.get_template("index.html.j2").render(
        root="", columns=columns, targets=targets, sections=sections(all_rows),
        contracts=len(all_rows), disagreeing=sum(r.disagree for r in all_rows),
        coverage=coverage_rows(columns, out), sources=_shown(runs, out), **common))
    page = env.get_template("failure.html.j2")
    for row in all_rows:
        for cell in row.cells:
            if cell.href is None or cell.result is None:
                continue
            path = os.path.join(out, *cell.href.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _write(path, page.render(root="../../", row=row, cell=cell, result=cell.result,
                                     column=cell.column, sources=_shown(cell.column.runs, out),
                                     **common))
            written.append(path)
    return written


def _shown(runs: list[Run], out: str) -> list[str]:
    """The runs' results.json paths: relative to the site when inside it, else absolute."""
    shown = []
    for run in runs:
        relative = os.path.relpath(run.source, out)
        shown.append(os.path.abspath(run.source) if relative.startswith(os.pardir)
                     else relative)
    return sorted(shown)


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is under ``folder`` (False on another drive)."""
    try:
        relative = os.path.relpath(path, folder)
    except ValueError:
        return False
    return relative != os.pardir and not relative.startswith(os.pardir + os.sep)


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(text)
