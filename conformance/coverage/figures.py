"""What a run executed of its target, as coverage.py's JSON report says it: small frozen
classes, their form in results.json (docs/results.md, ``coverage``) and the terminal's line.

The kit reads coverage.py's JSON report (``coverage json --show-contexts``) here and nowhere
else. Its summaries, missing lines and contexts are there from coverage.py 5.0 on; a target
whose coverage.py is too old to list missing branches per file gets none listed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from conformance.coverage.measurement import contract_of

# At most this many lines are listed under each file's lines that only one contract
# reaches (their count is always exact): enough for a module, bounded for a package.
ONE_CONTRACT_LISTED = 200


@dataclass(frozen=True)
class Figures:
    """How many of ``total`` lines (or branches) the run executed."""

    executed: int
    total: int

    @property
    def percent(self) -> float | None:
        """Executed out of total, in percent, to one decimal; None when there are none."""
        return round(100.0 * self.executed / self.total, 1) if self.total else None

    def to_json(self) -> dict[str, Any]:
        return {"executed": self.executed, "total": self.total, "percent": self.percent}

    def shown(self, noun: str) -> str:
        """``380 of 402 lines (94.5%)``."""
        percent = "" if self.percent is None else f" ({self.percent:g}%)"
        return f"{self.executed} of {self.total} {noun}{percent}"

    def __add__(self, other: Figures) -> Figures:
        return Figures(self.executed + other.executed, self.total + other.total)


@dataclass(frozen=True)
class FileCoverage:
    """One measured file: its figures, what the run never executed (lines; branches as
    (from line, to line), a negative ``to`` leaving the code object that starts at line
    -to), and the lines only one contract executed, by contract id."""

    path: str
    lines: Figures
    branches: Figures
    missing_lines: tuple[int, ...] = ()
    missing_branches: tuple[tuple[int, int], ...] = ()
    one_contract: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def from_report(cls, path: str, entry: dict[str, Any]) -> FileCoverage:
        """A file's entry in coverage.py's JSON report."""
        summary = entry["summary"]
        return cls(path=path,
                   lines=Figures(summary["covered_lines"], summary["num_statements"]),
                   branches=Figures(summary.get("covered_branches", 0),
                                    summary.get("num_branches", 0)),
                   missing_lines=tuple(entry.get("missing_lines", ())),
                   missing_branches=tuple((int(start), int(end)) for start, end
                                          in entry.get("missing_branches", ())),
                   one_contract=_one_contract(entry.get("contexts", {})))

    def to_json(self) -> dict[str, Any]:
        listed: dict[str, list[int]] = {}
        room = ONE_CONTRACT_LISTED
        for contract_id, lines in sorted(self.one_contract.items()):
            if room <= 0:
                break
            listed[contract_id] = list(lines[:room])
            room -= len(listed[contract_id])
        return {"path": self.path, "lines": self.lines.to_json(),
                "branches": self.branches.to_json(),
                "missing_lines": list(self.missing_lines),
                "missing_branches": [list(branch) for branch in self.missing_branches],
                "one_contract_lines": {
                    "count": sum(len(lines) for lines in self.one_contract.values()),
                    "by_contract": listed}}


def _one_contract(contexts: dict[str, list[str]]) -> dict[str, tuple[int, ...]]:
    """The executed lines that one contract alone reached (whatever its server classes),
    by contract id; lines reached only outside contracts (at import) are not among them."""
    alone: dict[str, list[int]] = {}
    for line, labels in contexts.items():
        contracts = {contract_of(label) for label in labels} - {None}
        if len(contracts) == 1:
            alone.setdefault(contracts.pop(), []).append(int(line))  # type: ignore[arg-type]
    return {contract_id: tuple(sorted(lines)) for contract_id, lines in alone.items()}


@dataclass(frozen=True)
class CoverageResults:
    """What a run executed of its target, file by file, with the reports coverage.py
    wrote; or, when there is nothing to show, ``error``: why (coverage.py's words)."""

    files: tuple[FileCoverage, ...] = ()
    tool: str | None = None
    include: tuple[str, ...] = ()
    html: str | None = None
    data: str | None = None
    error: str | None = None

    @classmethod
    def from_report(cls, report: dict[str, Any], *, include: tuple[str, ...], html: str,
                    data: str) -> CoverageResults:
        """coverage.py's JSON report, read, with where its other reports are."""
        files = tuple(FileCoverage.from_report(path, entry)
                      for path, entry in sorted(report.get("files", {}).items()))
        return cls(files=files, tool=f"coverage.py {report['meta']['version']}",
                   include=include, html=html, data=data)

    @property
    def lines(self) -> Figures:
        return _total(f.lines for f in self.files)

    @property
    def branches(self) -> Figures:
        return _total(f.branches for f in self.files)

    def to_json(self, folder: str) -> dict[str, Any]:
        """The ``coverage`` object of results.json, whose folder is ``folder``."""
        return {"tool": self.tool, "include": list(self.include),
                "html": _relative(self.html, folder), "data": _relative(self.data, folder),
                "error": self.error,
                "lines": None if self.error else self.lines.to_json(),
                "branches": None if self.error else self.branches.to_json(),
                "files": [f.to_json() for f in self.files]}

    def summary_line(self, shown: Callable[[str], str]) -> str:
        """The terminal's line, ``shown`` making the listing's path readable: ``coverage:
        380 of 402 lines (94.5%), 120 of 140 branches (85.7%) of socketserver.py:
        reports/stdlib/coverage/index.html``."""
        if self.error or self.html is None:
            return f"coverage: nothing to show ({self.error})"
        what = (os.path.basename(self.files[0].path) if len(self.files) == 1
                else f"{len(self.files)} files")
        return (f"coverage: {self.lines.shown('lines')}, {self.branches.shown('branches')}"
                f" of {what}: {shown(self.html)}")


def _total(figures: Iterable[Figures]) -> Figures:
    return sum(figures, Figures(0, 0))


def _relative(path: str | None, folder: str) -> str | None:
    return None if path is None else os.path.relpath(path, folder)
