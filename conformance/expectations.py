"""Expectations: a target's known departures from the contracts, kept in a TOML baseline.

A listed failure is reported as ``xfailed`` and does not fail the run; a listed failure that
passes is an unexpected pass and fails the run, so the baseline never goes stale. Entries
may be limited to server classes, an interpreter version range and a platform. A reason
that several entries share is written once, as a named cause::

    about = "found with eventlet 0.41.3 on CPython 3.11"   # optional

    [causes.green-threads-starve]   # optional: a reason entries refer to by name
    reason = "why the target differs"
    link = "https://..."            # optional: the bug report
    repro = "repro/starve.py"       # optional: as an entry's repro, for its entries

    [[expected]]
    contract = "request.udp_tuple"
    outcome = "fail"              # or "intermittent": passing and failing are both fine,
                                  # accepted only with a repro (its own or its cause's)
    reason = "why the target differs, or why the contract does not apply"
    # ... or, instead of reason, cause = "green-threads-starve" and, optionally,
    # note = "what is particular to this entry" (read before the cause's reason)
    servers = ["UDPServer"]       # optional: only these server classes (with
                                  # --server-class: the user's classes, by name)
    python = ">=3.6,<3.7"         # optional: only these target versions
    platform = "linux"            # optional: sys.platform prefix
    link = "https://..."          # optional: the bug report
    repro = "repro/starve.py"     # a standalone script, beside this file or below it,
                                  # that shows the target's own non-determinism without
                                  # the kit; required for "intermittent"

An ``intermittent`` entry accepts pass and fail alike, so it checks nothing: it is only
accepted with a committed reproduction showing that the target itself, not the kit, is
what varies. A baseline is checked when it is loaded, before any test runs: unknown tables and keys,
contract ids the catalog does not have, server classes the contract does not run on,
unknown causes, malformed version ranges, an ``intermittent`` entry without a repro and a
repro that is not a file are errors naming the file and the entry.
The kit ships the baselines of its named targets in ``conformance/baselines/``.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import hashlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.contracts.catalog import catalog

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

FAIL = "fail"
INTERMITTENT = "intermittent"
OUTCOMES = (FAIL, INTERMITTENT)
# What a run observed of one case, as updated() reads it (see ResultsCollector).
FAILED, PASSED, SKIPPED, ERROR = "failed", "passed", "skipped", "error"
BASELINES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "baselines")
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")
_TOP_KEYS = ("about", "causes", "expected")
_CAUSE_KEYS = ("reason", "link", "repro")
_ENTRY_KEYS = ("contract", "outcome", "reason", "cause", "note", "servers", "python",
               "platform", "link", "repro")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# A string longer than this is written as a multi-line string, one line per ~this width.
_WIDTH = 88


class ExpectationsError(Exception):
    """The expectations file is malformed; the message names the file and the entry."""


def shipped_baseline(target_name: str) -> str | None:
    """The path of the baseline the kit ships for the named target, if it ships one."""
    path = os.path.join(BASELINES_DIR, f"{target_name}.toml")
    return path if os.path.isfile(path) else None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def version_in_range(version: str, spec: str) -> bool:
    """Whether ``version`` (e.g. "3.8.18") satisfies ``spec`` (e.g. ">=3.6,<3.8").

    Versions compare on the parts the clause gives: "==3.8" matches any 3.8.x."""
    actual = _version(version)
    holds_all = True
    # Every clause is parsed, so that a malformed one is an error whatever the version.
    for clause in spec.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ExpectationsError(f"python = {spec!r}: {clause.strip()!r} is not like "
                                    "'>=3.8' (clauses: >=, <=, ==, !=, >, < and a version, "
                                    "comma-separated)")
        operator, wanted = match.group(1), _version(match.group(2))
        mine = actual[:len(wanted)]
        holds = {">=": mine >= wanted, "<=": mine <= wanted, "==": mine == wanted,
                 "!=": mine != wanted, ">": mine > wanted, "<": mine < wanted}[operator]
        holds_all = holds_all and holds
    return holds_all


@dataclass(frozen=True)
class Cause:
    """A reason several entries share, written once in the baseline."""

    name: str
    reason: str
    link: str | None = None
    # A standalone reproduction, relative to the baseline file's folder.
    repro: str | None = None


@dataclass(frozen=True)
class Expectation:
    """One known departure of the target from one contract.

    ``reason`` is the whole explanation: the entry's own, or, for an entry that names a
    ``cause``, its ``note`` (if any) followed by the cause's reason."""

    contract: str
    outcome: str
    reason: str = ""
    servers: tuple[str, ...] = ()
    python: str | None = None
    platform: str | None = None
    link: str | None = None
    cause: Cause | None = None
    note: str | None = None
    # The entry's own reproduction (see ``reproduction``), relative to the baseline's folder.
    repro: str | None = None

    @property
    def reproduction(self) -> str | None:
        """The standalone script that shows this departure: the entry's own, else its
        cause's."""
        return self.repro or (self.cause.repro if self.cause is not None else None)

    def __post_init__(self) -> None:
        if self.cause is not None:
            explained = f"{self.note} {self.cause.reason}" if self.note else self.cause.reason
            object.__setattr__(self, "reason", explained)

    def in_effect(self, python_version: str, platform: str = sys.platform) -> bool:
        """Whether this entry's conditions cover a run on that target version and OS."""
        return ((self.python is None or version_in_range(python_version, self.python))
                and (self.platform is None or platform.startswith(self.platform)))

    def applies(self, contract_id: str, server_class: str | None, python_version: str,
                platform: str = sys.platform) -> bool:
        """Whether this entry covers that contract, server class, target version and OS."""
        return (self.contract == contract_id
                and (not self.servers or server_class in self.servers)
                and self.in_effect(python_version, platform))


@dataclass(frozen=True)
class BaselineFile:
    """Which baseline a run used: its path and the sha256 of its content as read."""

    path: str
    sha256: str


@dataclass
class Baseline:
    """The expectations of one target, as read from (and written back to) its file.

    ``path`` is empty when the run has no baseline; ``sha256`` is None when the file did
    not exist (a run with --update-expectations then creates it)."""

    path: str
    entries: list[Expectation] = field(default_factory=list)
    causes: dict[str, Cause] = field(default_factory=dict)
    about: str | None = None
    sha256: str | None = None

    def find(self, contract_id: str, server_class: str | None,
             python_version: str) -> Expectation | None:
        """The first entry that covers this case, if any."""
        return next((entry for entry in self.entries
                     if entry.applies(contract_id, server_class, python_version)), None)

    def file(self) -> BaselineFile | None:
        """The file this baseline was read from, or None if the run read none."""
        if not self.path or self.sha256 is None:
            return None
        return BaselineFile(self.path, self.sha256)


def _catalog_servers() -> dict[str, tuple[str, ...]]:
    return {contract.id: contract.servers for contract in catalog()}


def _nearest(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(where: str, raw: Mapping[str, Any], allowed: Sequence[str],
                what: str = "key") -> None:
    for key in raw:
        if key not in allowed:
            raise ExpectationsError(f"{where}: unknown {what} {key!r}{_nearest(key, allowed)};"
                                    f" known: {', '.join(allowed)}")


def _text(where: str, raw: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise ExpectationsError(f"{where}: {key!r} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ExpectationsError(f"{where}: {key} must be a non-empty string")
    return value.strip()


def _cause(path: str, name: str, raw: Any) -> Cause:
    where = f"{path}: [causes.{name}]"
    if not isinstance(raw, dict):
        raise ExpectationsError(f"{where}: must be a table with a reason")
    _check_keys(where, raw, _CAUSE_KEYS)
    return Cause(name, _text(where, raw, "reason", required=True) or "",
                 _text(where, raw, "link"), _repro(path, where, raw))


def _repro(path: str, where: str, raw: Mapping[str, Any]) -> str | None:
    """A ``repro`` key's script, which must be a file in or below the baseline's folder."""
    repro = _text(where, raw, "repro")
    if repro is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    script = os.path.normpath(os.path.join(folder, repro))
    if os.path.isabs(repro) or not script.startswith(folder + os.sep):
        raise ExpectationsError(f"{where}: repro = {repro!r} must be a path relative to "
                                "the baseline's folder, inside it")
    if not os.path.isfile(script):
        raise ExpectationsError(f"{where}: repro = {repro!r}: no such file beside the "
                                "baseline")
    return repro


def _entry(path: str, number: int, raw: Any, causes: Mapping[str, Cause],
           contracts: Mapping[str, tuple[str, ...]]) -> Expectation:
    where = f"{path}: entry {number}"
    if not isinstance(raw, dict):
        raise ExpectationsError(f"{where}: must be a [[expected]] table")
    if isinstance(raw.get("contract"), str):
        where += f" ({raw['contract']})"
    _check_keys(where, raw, _ENTRY_KEYS)
    contract = _text(where, raw, "contract", required=True) or ""
    if contract not in contracts:
        raise ExpectationsError(f"{where}: unknown contract {contract!r}"
                                f"{_nearest(contract, sorted(contracts))}; "
                                "see python -m conformance --list-contracts")
    outcome = _text(where, raw, "outcome", required=True)
    if outcome not in OUTCOMES:
        raise ExpectationsError(f"{where}: outcome must be one of {', '.join(OUTCOMES)}, "
                                f"not {outcome!r}")
    reason = _text(where, raw, "reason")
    cause, note = _entry_cause(where, raw, reason, causes)
    servers = _entry_servers(where, raw, contract, contracts)
    python = _text(where, raw, "python")
    if python is not None:
        try:
            version_in_range("3", python)
        except ExpectationsError as exc:
            raise ExpectationsError(f"{where}: {exc}") from None
    entry = Expectation(contract, outcome, reason or "", servers, python,
                        _text(where, raw, "platform"), _text(where, raw, "link"), cause, note,
                        _repro(path, where, raw))
    if outcome == INTERMITTENT and entry.reproduction is None:
        raise ExpectationsError(
            f"{where}: an intermittent entry accepts pass and fail alike; it needs a repro "
            "(its own or its cause's): a standalone script beside the baseline that shows "
            "the target's own non-determinism without the kit")
    return entry


def _entry_cause(where: str, raw: dict[str, Any], reason: str | None,
                 causes: Mapping[str, Cause]) -> tuple[Cause | None, str | None]:
    """An entry's shared cause and its note: an entry gives a reason or a cause."""
    cause_name, note = _text(where, raw, "cause"), _text(where, raw, "note")
    if (reason is None) == (cause_name is None):
        raise ExpectationsError(f"{where}: give either a reason or a cause")
    if note is not None and cause_name is None:
        raise ExpectationsError(f"{where}: a note goes with a cause; put it in the reason")
    if cause_name is None:
        return None, None
    cause = causes.get(cause_name)
    if cause is None:
        raise ExpectationsError(f"{where}: unknown cause {cause_name!r}"
                                f"{_nearest(cause_name, list(causes))}; causes: "
                                + (", ".join(causes) or "none"))
    return cause, note


def _entry_servers(where: str, raw: dict[str, Any], contract: str,
                   contracts: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The server classes an entry names: classes its contract runs on (none: all)."""
    servers = raw.get("servers", [])
    if not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
        raise ExpectationsError(f"{where}: servers must be a list of server class names")
    if "servers" in raw and not servers:
        raise ExpectationsError(f"{where}: servers is empty; leave it out for every class")
    for server in servers:
        if server not in contracts[contract]:
            raise ExpectationsError(f"{where}: {contract} does not run on {server!r}; its "
                                    f"server classes: {', '.join(contracts[contract])}")
    return tuple(servers)


def _check_overlaps(path: str, entries: list[Expectation],
                    contracts: Mapping[str, tuple[str, ...]]) -> None:
    # Under the same conditions, a later entry for a class an earlier one covers never
    # applies (find() takes the first): that is a mistake, not a choice.
    seen: dict[tuple[str, str | None, str | None], tuple[int, set[str]]] = {}
    for number, entry in enumerate(entries, 1):
        key = (entry.contract, entry.python, entry.platform)
        classes = set(entry.servers or contracts[entry.contract])
        if key in seen and seen[key][1] & classes:
            raise ExpectationsError(
                f"{path}: entry {number} ({entry.contract}): covers "
                f"{', '.join(sorted(seen[key][1] & classes))} as entry {seen[key][0]} does, "
                "under the same conditions; merge them")
        earlier = seen.get(key, (number, set()))
        seen[key] = (earlier[0], earlier[1] | classes)


def loads(text: str, path: str,
          contracts: Mapping[str, tuple[str, ...]] | None = None) -> Baseline:
    """A baseline from TOML ``text`` read from ``path``, checked against the catalog (or
    ``contracts``: contract ids and their server classes); ExpectationsError if malformed."""
    known = _catalog_servers() if contracts is None else contracts
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"{path}: not TOML: {exc}") from None
    _check_keys(path, data, _TOP_KEYS, "table or key")
    about = _text(path, data, "about")
    raw_causes = data.get("causes", {})
    if not isinstance(raw_causes, dict):
        raise ExpectationsError(f"{path}: causes must be tables, [causes.NAME]")
    causes = {name: _cause(path, name, raw) for name, raw in raw_causes.items()}
    raw_entries = data.get("expected", [])
    if not isinstance(raw_entries, list):
        raise ExpectationsError(f"{path}: expected must be [[expected]] tables")
    entries = [_entry(path, n, raw, causes, known) for n, raw in enumerate(raw_entries, 1)]
    _check_overlaps(path, entries, known)
    return Baseline(path, entries, causes, about,
                    hashlib.sha256(text.encode("utf-8")).hexdigest())


def load(path: str, required: bool = False,
         contracts: Mapping[str, tuple[str, ...]] | None = None) -> Baseline:
    """Read and check a baseline; a missing file is an error if ``required``, else an
    empty baseline (that --update-expectations may create)."""
    if not os.path.exists(path):
        if required:
            raise ExpectationsError(f"{path}: no such expectations file")
        return Baseline(path)
    try:
        with open(path, "rb") as fp:
            raw = fp.read()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectationsError(f"{path}: cannot be read: {exc}") from None
    baseline = loads(text, path, contracts)
    baseline.sha256 = hashlib.sha256(raw).hexdigest()
    return baseline


def _escaped(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", out)


def _pair(key: str, value: str) -> str:
    """``key = "value"``, as a multi-line string of wrapped lines when it is long."""
    line = f'{key} = "{_escaped(value)}"'
    if len(line) <= _WIDTH + 12 or value != value.strip():
        return line
    # A backslash ending a line joins it to the next one's first non-blank character, so
    # the text is cut only where one space or more is followed by a word.
    lines, current = [], ""
    for chunk in re.split(r"(?<= )(?=\S)", _escaped(value)):
        if current and len(current) + len(chunk) > _WIDTH:
            lines.append(current)
            current = ""
        current += chunk
    lines.append(current)
    return f'{key} = """\\\n    ' + "\\\n    ".join(lines) + '"""'


def _table_key(name: str) -> str:
    return name if _BARE_KEY.match(name) else f'"{_escaped(name)}"'


def dump(baseline: Baseline, target_name: str) -> str:
    """The baseline as TOML text: causes as written, entries sorted by contract id."""
    lines = [f"# Expected departures of {target_name} from the socketserver contracts.",
             "# Format: see conformance/expectations.py. Rewritten by --update-expectations,",
             "# which keeps every reason and cause; write one for each new entry.", ""]
    if baseline.about:
        lines += [_pair("about", baseline.about), ""]
    for cause in baseline.causes.values():
        lines.append(f"[causes.{_table_key(cause.name)}]")
        lines.append(_pair("reason", cause.reason))
        lines += [_pair(key, getattr(cause, key)) for key in ("link", "repro")
                  if getattr(cause, key)]
        lines.append("")
    for entry in sorted(baseline.entries, key=lambda e: (e.contract, e.servers)):
        lines += [*_entry_lines(entry), ""]
    return "\n".join(lines)


def _entry_lines(entry: Expectation) -> list[str]:
    """One [[expected]] table, its keys in the order the format documents them."""
    lines = ["[[expected]]", _pair("contract", entry.contract), _pair("outcome", entry.outcome)]
    if entry.servers:
        lines.append("servers = [" + ", ".join(f'"{s}"' for s in entry.servers) + "]")
    lines += [_pair(key, getattr(entry, key)) for key in ("python", "platform")
              if getattr(entry, key)]
    if entry.cause is not None:
        lines.append(_pair("cause", entry.cause.name))
        if entry.note:
            lines.append(_pair("note", entry.note))
    else:
        lines.append(_pair("reason", entry.reason))
    lines += [_pair(key, getattr(entry, key)) for key in ("link", "repro")
              if getattr(entry, key)]
    return lines


def updated(baseline: Baseline, observed: Mapping[tuple[str, str], str],
            python_version: str, platform: str = sys.platform,
            contracts: Mapping[str, tuple[str, ...]] | None = None) -> Baseline:
    """The baseline after a run that observed these cases.

    ``observed`` maps (contract id, server class) to FAILED, PASSED, SKIPPED or ERROR for
    every case the run checked; what the run did not select is absent and stays as it was.
    A ``fail`` entry in effect for this run is dropped when its classes passed or were
    skipped and one at least passed; when only some passed, it is narrowed to the others
    (failed, errors, or not checked). ``intermittent`` entries, entries for other versions
    or platforms, causes and every reason are kept. A failed case no entry covers gets a
    new entry, for every class when all of the contract's classes failed (or were
    skipped), else naming the classes that failed."""
    servers_of = _catalog_servers() if contracts is None else contracts
    kept: list[Expectation] = []
    for entry in baseline.entries:
        if entry.outcome == INTERMITTENT or not entry.in_effect(python_version, platform):
            kept.append(entry)
            continue
        listed = entry.servers or servers_of.get(entry.contract, ())
        seen = {server: observed.get((entry.contract, server)) for server in listed}
        if PASSED not in seen.values():
            kept.append(entry)
            continue
        remaining = tuple(server for server in listed if seen[server] in (FAILED, ERROR, None))
        if remaining:
            kept.append(dataclasses.replace(entry, servers=remaining))
    covered = {(entry.contract, server) for entry in kept
               if entry.in_effect(python_version, platform)
               for server in (entry.servers or servers_of.get(entry.contract, ()))}
    today = datetime.date.today().isoformat()
    for contract_id in sorted({contract for contract, _ in observed}):
        classes = servers_of.get(contract_id, ())
        new = tuple(server for server in classes
                    if observed.get((contract_id, server)) == FAILED
                    and (contract_id, server) not in covered)
        if not new:
            continue
        every_class = all(observed.get((contract_id, server)) in (FAILED, SKIPPED)
                          and (contract_id, server) not in covered for server in classes)
        kept.append(Expectation(
            contract_id, FAIL,
            f"Found by --update-expectations on {today}; explain why the target differs.",
            () if every_class else new))
    return dataclasses.replace(baseline, entries=kept)
