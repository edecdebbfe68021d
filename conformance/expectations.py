"""Expectations: a target's known departures from the contracts, kept in a TOML baseline.

A listed failure is reported as ``xfailed`` and does not fail the run; a listed failure that
passes is an unexpected pass and fails the run, so the baseline never goes stale. Entries
may be limited to server classes, an interpreter version range and a platform::

    [[expected]]
    contract = "request.udp_tuple"
    outcome = "fail"              # or "intermittent": passing and failing are both fine
    reason = "why the target differs, or why the contract does not apply"
    servers = ["UDPServer"]       # optional: only these server classes
    python = ">=3.6,<3.7"         # optional: only these target versions
    platform = "linux"            # optional: sys.platform prefix
    link = "https://..."          # optional: the bug report
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

FAIL = "fail"
INTERMITTENT = "intermittent"
OUTCOMES = (FAIL, INTERMITTENT)
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)*)\s*$")


class ExpectationsError(Exception):
    """The expectations file is malformed; the message names the file and the entry."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def version_in_range(version: str, spec: str) -> bool:
    """Whether ``version`` (e.g. "3.8.18") satisfies ``spec`` (e.g. ">=3.6,<3.8").

    Versions compare on the parts the clause gives: "==3.8" matches any 3.8.x."""
    actual = _version(version)
    for clause in spec.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ExpectationsError(f"python = {spec!r}: {clause!r} is not like '>=3.8'")
        operator, wanted = match.group(1), _version(match.group(2))
        mine = actual[:len(wanted)]
        holds = {">=": mine >= wanted, "<=": mine <= wanted, "==": mine == wanted,
                 "!=": mine != wanted, ">": mine > wanted, "<": mine < wanted}[operator]
        if not holds:
            return False
    return True


@dataclass(frozen=True)
class Expectation:
    """One known departure of the target from one contract."""

    contract: str
    outcome: str
    reason: str
    servers: tuple[str, ...] = ()
    python: str | None = None
    platform: str | None = None
    link: str | None = None

    def applies(self, contract_id: str, server_class: str | None, python_version: str,
                platform: str = sys.platform) -> bool:
        """Whether this entry covers that contract, server class, target version and OS."""
        return (self.contract == contract_id
                and (not self.servers or server_class in self.servers)
                and (self.python is None or version_in_range(python_version, self.python))
                and (self.platform is None or platform.startswith(self.platform)))


@dataclass
class Baseline:
    """The expectations of one target, as read from (and written back to) its file."""

    path: str
    entries: list[Expectation] = field(default_factory=list)

    def find(self, contract_id: str, server_class: str | None,
             python_version: str) -> Expectation | None:
        """The first entry that covers this case, if any."""
        return next((entry for entry in self.entries
                     if entry.applies(contract_id, server_class, python_version)), None)


def _entry(path: str, number: int, raw: dict[str, Any]) -> Expectation:
    where = f"{path}: entry {number}"
    unknown = set(raw) - {"contract", "outcome", "reason", "servers", "python", "platform",
                          "link"}
    if unknown:
        raise ExpectationsError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("contract", "outcome", "reason"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ExpectationsError(f"{where}: {key!r} is required")
    if raw["outcome"] not in OUTCOMES:
        raise ExpectationsError(f"{where}: outcome must be one of {OUTCOMES}")
    if raw.get("python"):
        version_in_range("3.0", raw["python"])
    return Expectation(raw["contract"], raw["outcome"], raw["reason"].strip(),
                       tuple(raw.get("servers", ())), raw.get("python"),
                       raw.get("platform"), raw.get("link"))


def load(path: str) -> Baseline:
    """Read a baseline; a missing file is an empty baseline."""
    if not os.path.exists(path):
        return Baseline(path)
    try:
        with open(path, "rb") as fp:
            data = tomllib.load(fp)
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"{path}: {exc}") from None
    raw_entries = data.get("expected", [])
    return Baseline(path, [_entry(path, n, raw) for n, raw in enumerate(raw_entries, 1)])


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def dump(baseline: Baseline, target_name: str) -> str:
    """The baseline as TOML text, entries sorted by contract id."""
    lines = [f"# Expected departures of {target_name} from the socketserver contracts.",
             "# Format: see conformance/expectations.py. Rewritten by --update-expectations,",
             "# which keeps every reason; write one for each new entry.", ""]
    for entry in sorted(baseline.entries, key=lambda e: (e.contract, e.servers)):
        lines.append("[[expected]]")
        lines.append(f"contract = {_toml_string(entry.contract)}")
        lines.append(f"outcome = {_toml_string(entry.outcome)}")
        lines.append(f"reason = {_toml_string(entry.reason)}")
        if entry.servers:
            lines.append("servers = [" + ", ".join(map(_toml_string, entry.servers)) + "]")
        for key in ("python", "platform", "link"):
            value = getattr(entry, key)
            if value:
                lines.append(f"{key} = {_toml_string(value)}")
        lines.append("")
    return "\n".join(lines)


def updated(baseline: Baseline, failing: dict[str, list[str]], passing: dict[str, list[str]],
            python_version: str) -> Baseline:
    """The baseline after a run: entries for contracts that failed (servers listed) are
    added, entries that only ever passed in this run are dropped, reasons are kept.

    ``failing`` and ``passing`` map contract ids to the server classes with that outcome.
    Entries whose conditions do not cover this run are kept untouched."""
    kept: list[Expectation] = []
    for entry in baseline.entries:
        in_scope = entry.python is None or version_in_range(python_version, entry.python)
        if not in_scope or entry.outcome == INTERMITTENT:
            kept.append(entry)
            continue
        still_failing = [s for s in failing.get(entry.contract, [])
                         if not entry.servers or s in entry.servers]
        if still_failing:
            every_server = not entry.servers and not passing.get(entry.contract)
            kept.append(dataclasses.replace(
                entry, servers=() if every_server else tuple(sorted(still_failing))))
    covered = {(e.contract, s) for e in kept for s in (e.servers or failing.get(e.contract, []))}
    today = datetime.date.today().isoformat()
    for contract_id, servers in sorted(failing.items()):
        new = [s for s in servers if (contract_id, s) not in covered]
        if not new:
            continue
        every_server = not passing.get(contract_id)
        kept.append(Expectation(
            contract_id, FAIL,
            f"Found by --update-expectations on {today}; explain why the target differs.",
            () if every_server else tuple(sorted(new))))
    return Baseline(baseline.path, kept)
