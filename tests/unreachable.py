"""The lines and branches of the stdlib's socketserver.py that no contract can execute on
Linux (tests/stdlib_unreachable.toml), and how a coverage measurement departs from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.expectations import tomllib

LIST = Path(__file__).with_name("stdlib_unreachable.toml")


@dataclass(frozen=True)
class Unreachable:
    """A line, or a branch (``to`` set), that cannot run here, and why."""

    line: int
    text: str
    reason: str
    to: int | None = None

    def describe(self) -> str:
        where = f"line {self.line}" if self.to is None else f"branch {self.line}->{self.to}"
        return f"{where} ({self.text})"


def listed(version: str) -> list[Unreachable] | None:
    """Every entry for CPython ``version`` ("3.11"); None if the list has no section for it."""
    document = tomllib.loads(LIST.read_text(encoding="utf-8"))
    reasons = document["reasons"]
    section = document.get(version)
    if section is None:
        return None
    return ([Unreachable(entry["line"], entry["text"], reasons[entry["reason"]])
             for entry in section.get("lines", [])]
            + [Unreachable(entry["from"], entry["text"], reasons[entry["reason"]], entry["to"])
               for entry in section.get("branches", [])])


def departures(measured: dict[str, Any], entries: list[Unreachable]) -> list[str]:
    """What in one measured file of results.json's ``coverage`` (socketserver.py) departs
    from the ``entries`` listed for its CPython version: a line or branch not executed and
    not listed, one listed and executed, an entry whose text is not the source's."""
    source = Path(measured["path"]).read_text(encoding="utf-8").splitlines()
    problems = [f"{entry.describe()}: line {entry.line} of {measured['path']} reads "
                f"{source[entry.line - 1].strip()!r}, so the list is for another "
                "socketserver.py" for entry in entries
                if source[entry.line - 1].strip() != entry.text]
    if problems:
        return problems
    lines = {entry.line: entry for entry in entries if entry.to is None}
    branches = {(entry.line, entry.to): entry for entry in entries if entry.to is not None}
    missing_lines = set(measured["missing_lines"])
    missing_branches = {tuple(branch) for branch in measured["missing_branches"]}
    for line in sorted(missing_lines - set(lines)):
        problems.append(f"line {line} ({source[line - 1].strip()}) was not executed: no "
                        "contract reaches it, and the list does not say it cannot run")
    for start, end in sorted(missing_branches - set(branches)):
        problems.append(f"branch {start}->{end} ({source[start - 1].strip()}) was not "
                        "taken: no contract takes it, and the list does not say it cannot")
    problems += [f"{entry.describe()} is listed as unreachable ({entry.reason}), yet it ran"
                 for key, entry in [*lines.items(), *branches.items()]
                 if key not in (missing_lines if entry.to is None else missing_branches)]
    return problems
