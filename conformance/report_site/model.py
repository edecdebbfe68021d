"""results.json files read into small frozen records, and merged into the matrix.

Reading is defensive: a field an older or partial file lacks gets a neutral default, so the
site shows "unknown" or leaves the detail out rather than failing. The fields read are
listed in the package docstring.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance.contracts.catalog import ALL_SERVERS

SCHEMA = "socketserver-conformance/results"
# Verdicts in the order the site lists them: worst first. "not run" is the site's own: the
# contract is in some results.json but not in this target's.
VERDICTS = ("failed", "error", "xfailed", "passed", "skipped", "not run")
LABELS = {"failed": "failed", "error": "error", "xfailed": "expected", "passed": "passed",
          "skipped": "skipped", "not run": "not run"}
# Verdicts that get a page of their own.
DETAILED = ("failed", "error", "xfailed")
# The plugin's xfail reason: "expected (eventlet.toml): why".
_BASELINE_MESSAGE = re.compile(r"^expected \(([^)]*)\):\s*(.*)$", re.DOTALL)
_SEVERITY = {"failed": 4, "error": 3, "xfailed": 2, "passed": 1, "skipped": 0}
_IMPLEMENTATIONS = {"cpython": "CPython", "pypy": "PyPy"}


class NotResults(Exception):
    """The file is not a results.json of this kit (or not JSON at all)."""


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


@dataclass(frozen=True)
class Event:
    """One line of a transcript: at ``t`` seconds, ``who`` did or saw ``event``."""

    t: float | None
    who: str
    event: str
    data: str | None

    @classmethod
    def read(cls, raw: Any) -> Event:
        if not isinstance(raw, dict):
            return cls(None, "", _text(raw) or "", None)
        return cls(_number(raw.get("t")), _text(raw.get("who")) or "",
                   _text(raw.get("event")) or "", _text(raw.get("data")))

    @property
    def side(self) -> str:
        """client, handler, server or other: what the transcript colours the line by."""
        who = self.who.lower()
        return next((side for side in ("client", "handler", "server") if side in who),
                    "other")


@dataclass(frozen=True)
class BaselineEntry:
    """The expectations entry that made a failure expected."""

    file: str | None
    reason: str
    link: str | None = None

    @classmethod
    def read(cls, case: dict[str, Any]) -> BaselineEntry | None:
        # A structured entry, if a later kit records one; else the plugin's xfail message.
        raw = case.get("expectation") or case.get("baseline")
        if isinstance(raw, dict) and raw.get("reason"):
            return cls(_text(raw.get("file")), str(raw["reason"]), _text(raw.get("link")))
        if case.get("outcome") != "xfailed" or not case.get("message"):
            return None
        match = _BASELINE_MESSAGE.match(str(case["message"]).strip())
        if match is None:
            return cls(None, str(case["message"]).strip())
        return cls(match.group(1), match.group(2))


@dataclass(frozen=True)
class Case:
    """One contract checked on one server class."""

    server: str
    outcome: str
    message: str | None = None
    counterexample: str | None = None
    reproduce: str | None = None
    duration: float | None = None
    blocking: bool = True
    xpassed: bool = False
    baseline: BaselineEntry | None = None
    # None: no transcript recorded; a tuple (maybe empty) otherwise.
    transcript: tuple[Event, ...] | None = None

    @classmethod
    def read(cls, raw: dict[str, Any]) -> Case:
        transcript = raw.get("transcript")
        return cls(
            server=_text(raw.get("server")) or "?",
            outcome=_text(raw.get("outcome")) or "skipped",
            message=_text(raw.get("message")),
            counterexample=_text(raw.get("counterexample")),
            reproduce=_text(raw.get("reproduce")),
            duration=_number(raw.get("duration")),
            blocking=raw.get("blocking") is not False,
            xpassed=raw.get("xpassed") is True,
            baseline=BaselineEntry.read(raw),
            transcript=(tuple(Event.read(e) for e in transcript)
                        if isinstance(transcript, list) else None),
        )


@dataclass(frozen=True)
class Contract:
    """A contract as the results file states it."""

    id: str
    statement: str = ""
    level: str = ""
    reference: str | None = None

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0] if "." in self.id else ""


@dataclass(frozen=True)
class Result:
    """A contract's verdict on one target, with its cases."""

    contract: Contract
    outcome: str
    cases: tuple[Case, ...]
    blocking: bool = True

    @classmethod
    def read(cls, raw: dict[str, Any]) -> Result:
        contract = Contract(str(raw["id"]), _text(raw.get("statement")) or "",
                            _text(raw.get("level")) or "", _text(raw.get("reference")))
        cases = tuple(sorted((Case.read(c) for c in raw.get("cases") or ()
                              if isinstance(c, dict)), key=_server_order))
        if not cases and raw.get("outcome"):
            # An old file without cases: the contract's worst case stands for all of them.
            cases = (Case.read({**raw, "server": "(all)"}),)
        outcome = _text(raw.get("outcome")) or max(
            (c.outcome for c in cases), key=lambda o: _SEVERITY.get(o, 5), default="skipped")
        blocking = raw.get("blocking")
        if not isinstance(blocking, bool):
            blocking = any(c.blocking for c in cases if c.outcome in ("failed", "error"))
        return cls(contract, outcome, cases, blocking)

    @property
    def xpassed(self) -> bool:
        return any(c.xpassed for c in self.cases if c.outcome == self.outcome)

    @property
    def worst(self) -> tuple[Case, ...]:
        """The cases that have the contract's verdict."""
        return tuple(c for c in self.cases if c.outcome == self.outcome)

    def differing_servers(self) -> str | None:
        """On which server classes the verdict holds, when the others do not (skips aside: a
        class the target lacks is not a difference); shorter as "all but ..."."""
        ran = [c for c in self.cases if c.outcome != "skipped"]
        if len({c.outcome for c in ran}) < 2:
            return None
        having = [c.server for c in ran if c.outcome == self.outcome]
        others = [c.server for c in ran if c.outcome != self.outcome]
        if len(others) < len(having):
            return "on all but " + ", ".join(others)
        return "on " + ", ".join(having)


@dataclass(frozen=True)
class CoverageFigures:
    """``executed`` of ``total`` lines (or branches); ``percent`` to one decimal, None when
    ``total`` is 0."""

    executed: int
    total: int
    percent: float | None

    @classmethod
    def read(cls, raw: Any) -> CoverageFigures | None:
        """None unless ``raw`` has integer ``executed`` and ``total``; a missing percent is
        computed from them."""
        if not isinstance(raw, dict):
            return None
        executed, total = _number(raw.get("executed")), _number(raw.get("total"))
        if executed is None or total is None:
            return None
        percent = _number(raw.get("percent"))
        if percent is None and total:
            percent = round(100.0 * executed / total, 1)
        return cls(int(executed), int(total), percent if total else None)

    @property
    def shown(self) -> str:
        """``171 / 313 (54.6%)``, or ``0 / 0`` when there is nothing to count."""
        percent = "" if self.percent is None else f" ({self.percent:g}%)"
        return f"{self.executed} / {self.total}{percent}"


@dataclass(frozen=True)
class Coverage:
    """A results.json's ``coverage`` object (runs with ``--coverage``), every file together.

    ``html`` is the path of coverage.py's HTML listing as the file gives it (relative to the
    results.json folder unless absolute), ``html_path`` where that is from the current
    folder. ``lines`` and ``branches`` are None when the file records none (``error`` then
    says why, if it says). ``one_contract`` is, per contract id, how many of the lines
    that one contract alone reaches results.json lists, most first;
    ``one_contract_count`` is how many such lines there are, which is more than the listed
    sum when results.json cut its lists short.
    """

    source: str
    tool: str | None = None
    html: str | None = None
    error: str | None = None
    lines: CoverageFigures | None = None
    branches: CoverageFigures | None = None
    files: tuple[str, ...] = ()
    one_contract_count: int = 0
    one_contract: tuple[tuple[str, int], ...] = ()

    @classmethod
    def read(cls, raw: Any, source: str) -> Coverage | None:
        """None when ``raw`` is not an object (null, or absent in older files)."""
        if not isinstance(raw, dict):
            return None
        files = [f for f in raw.get("files") or () if isinstance(f, dict)]
        count, listed = _one_contract(files)
        return cls(source=source, tool=_text(raw.get("tool")), html=_text(raw.get("html")),
                   error=_text(raw.get("error")),
                   lines=CoverageFigures.read(raw.get("lines")),
                   branches=CoverageFigures.read(raw.get("branches")),
                   files=tuple(_text(f.get("path")) or "?" for f in files),
                   one_contract_count=count, one_contract=listed)

    @property
    def html_path(self) -> str | None:
        """The HTML listing's path: absolute as recorded, else joined to the results.json
        folder."""
        if self.html is None:
            return None
        return os.path.join(os.path.dirname(self.source), self.html)

    @property
    def one_contract_unlisted(self) -> int:
        """How many lines one contract alone reaches that results.json does not list."""
        return self.one_contract_count - sum(n for _, n in self.one_contract)

    @property
    def measured(self) -> str | None:
        """The measured files in short: ``socketserver.py``, or ``3 files``."""
        if not self.files:
            return None
        if len(self.files) == 1:
            return os.path.basename(self.files[0])
        return f"{len(self.files)} files"


def _one_contract(files: list[dict[str, Any]]) -> tuple[int, tuple[tuple[str, int], ...]]:
    """The files' ``one_contract_lines`` together: how many lines (never fewer than are
    listed), and how many are listed per contract, most first."""
    count = 0
    listed: dict[str, int] = {}
    for entry in files:
        alone = entry.get("one_contract_lines")
        if not isinstance(alone, dict):
            continue
        count += int(_number(alone.get("count")) or 0)
        by_contract = alone.get("by_contract")
        for contract_id, lines in (by_contract.items() if isinstance(by_contract, dict)
                                   else ()):
            if isinstance(lines, list):
                listed[str(contract_id)] = listed.get(str(contract_id), 0) + len(lines)
    ordered = tuple(sorted(listed.items(), key=lambda kv: (-kv[1], kv[0])))
    return max(count, sum(listed.values())), ordered


@dataclass(frozen=True)
class Run:
    """One results.json: a target, how it was run, and its results."""

    source: str
    name: str
    target: dict[str, Any]
    profile: str | None
    generated: datetime.datetime | None
    platform: str | None
    kit_version: str | None
    packages: tuple[tuple[str, str], ...]
    results: tuple[Result, ...]
    # None: the run measured no coverage (no --coverage, or a file older than it).
    coverage: Coverage | None = None

    @classmethod
    def load(cls, path: str) -> Run:
        try:
            with open(path, encoding="utf-8") as fp:
                doc = json.load(fp)
        except (OSError, ValueError) as exc:
            raise NotResults(f"{path}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("contracts"), list) or (
                doc.get("schema", SCHEMA) != SCHEMA):
            raise NotResults(f"{path}: not a {SCHEMA} file")
        target = doc.get("target") if isinstance(doc.get("target"), dict) else {}
        kit = doc.get("kit") if isinstance(doc.get("kit"), dict) else {}
        return cls(
            source=path,
            name=_text(target.get("name")) or os.path.basename(os.path.dirname(path)) or "?",
            target=target,
            profile=_text(doc.get("profile")),
            generated=_timestamp(doc.get("generated")),
            platform=_text(target.get("platform") or doc.get("platform")),
            kit_version=_text(target.get("kit_version") or doc.get("kit_version")
                              or kit.get("version")),
            packages=_packages(target.get("packages") or doc.get("packages")),
            results=tuple(Result.read(c) for c in doc["contracts"]
                          if isinstance(c, dict) and c.get("id")),
            coverage=Coverage.read(doc.get("coverage"), path),
        )

    @property
    def interpreter(self) -> str | None:
        version = _text(self.target.get("python_version"))
        if version is None:
            return None
        implementation = _text(self.target.get("implementation")) or ""
        return f"{_IMPLEMENTATIONS.get(implementation, implementation)} {version}".strip()

    @property
    def identity(self) -> tuple[str | None, ...]:
        """Runs of one target on the same interpreter and platform merge into one column."""
        return (self.name, self.interpreter, self.platform)


def _server_order(case: Case) -> tuple[int, str]:
    # The catalog's order (TCP, Unix stream, UDP, Unix datagram; each plain, threading,
    # forking), not the order in which xdist workers happened to finish.
    known = ALL_SERVERS.index(case.server) if case.server in ALL_SERVERS else len(ALL_SERVERS)
    return known, case.server


def _timestamp(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        # Python 3.9's fromisoformat does not take "Z".
        stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.timezone.utc)


def _packages(value: Any) -> tuple[tuple[str, str], ...]:
    """{"eventlet": "0.41.3"} or ["eventlet==0.41.3"] as sorted (name, version) pairs."""
    if isinstance(value, dict):
        pairs = [(str(k), _text(v) or "?") for k, v in value.items()]
    elif isinstance(value, list):
        pairs = [tuple(str(item).split("==", 1)) if "==" in str(item) else (str(item), "")
                 for item in value]
    else:
        return ()
    return tuple(sorted(pairs))  # type: ignore[arg-type]


@dataclass
class Column:
    """A target as the matrix shows it: one or more runs merged, the newest result of each
    contract winning."""

    slug: str
    runs: list[Run] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def name(self) -> str:
        return self.first.name

    @property
    def profiles(self) -> list[str]:
        return sorted({r.profile for r in self.runs if r.profile})

    @property
    def generated(self) -> datetime.datetime | None:
        stamps = [r.generated for r in self.runs if r.generated]
        return max(stamps) if stamps else None

    @property
    def packages(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({pair for r in self.runs for pair in r.packages}))

    @property
    def coverage_runs(self) -> list[Run]:
        """Its runs that measured coverage, oldest first (figures of separate runs do not
        add up, so each is shown on its own)."""
        return [r for r in self.runs if r.coverage is not None]

    def verdict(self, contract_id: str) -> str:
        result = self.results.get(contract_id)
        return result.outcome if result else "not run"

    def counts(self, contract_ids: Iterable[str]) -> dict[str, int]:
        counts = dict.fromkeys(VERDICTS, 0)
        for contract_id in contract_ids:
            verdict = self.verdict(contract_id)
            counts[verdict] = counts.get(verdict, 0) + 1
        return counts


def find_results(folders: Iterable[str]) -> Iterator[str]:
    """Every results.json under the folders, in a stable order."""
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            if "results.json" in files:
                yield os.path.join(root, "results.json")


def _natural(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.split(r"(\d+)", name) if part)


def columns(runs: Iterable[Run]) -> list[Column]:
    """Runs merged by identity (target name, interpreter, platform), sorted by name, numbers
    by value (cpython3.9 before cpython3.10)."""
    merged: dict[tuple[str | None, ...], Column] = {}
    oldest = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    for run in sorted(runs, key=lambda r: (r.generated or oldest, r.source)):
        column = merged.setdefault(run.identity, Column(slug=""))
        column.runs.append(run)
        for result in run.results:
            column.results[result.contract.id] = result
    ordered = sorted(merged.values(),
                     key=lambda c: (_natural(c.name), c.first.interpreter or ""))
    used: set[str] = set()
    for column in ordered:
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", column.name).strip("-.") or "target"
        slug, n = base, 1
        while slug in used:
            n += 1
            slug = f"{base}-{n}"
        used.add(slug)
        column.slug = slug
    return ordered
