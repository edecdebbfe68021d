"""Which contracts can observe a mutant: coverage-guided selection for tools/mutation.py.

The unmutated copy of socketserver.py is run through the whole catalog with ``--coverage``,
which records each line it executed under the dynamic context of the contract and server
class whose servers ran it (``echo.upper[TCPServer]``), or under the empty context when it
ran at import (docs/coverage.md). A mutant changes a few lines of that copy and keeps the
others where they were (cosmic-ray rewrites one node in place), so:

- a contract that executed none of the changed lines ran the same code on the mutant as on
  the copy, and its verdict cannot change: only the contracts that executed one are run;
- a changed line that ran at import (a ``def`` or ``class`` line, a default argument, a
  class attribute, a module constant) makes a difference to every contract: the whole
  catalog runs;
- a changed line no contract executed cannot make the kit fail: the mutant survives the
  kit without being run.

The selection is as good as the coverage it comes from: a contract whose Hypothesis
examples reach a line on the mutant that they did not reach on the copy is not selected.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conformance.coverage.measurement import DATA_FILE, DATA_FOLDER, contract_of

# Stands, among the contracts that executed a line, for the empty context: the line ran
# while the implementation was imported.
AT_IMPORT = ""
# Selection.scope: which part of the catalog the kit runs on a mutant.
WHOLE_CATALOG = "whole catalog"
SELECTED = "selected"
UNREACHED = "none executes it"

LineContracts = Mapping[int, frozenset[str]]


class BaselineCoverageError(Exception):
    """The unmutated copy's coverage data is missing or does not measure the copy."""


@dataclass(frozen=True)
class Selection:
    """The part of the catalog the kit runs on one mutant (``scope``), the contracts when
    it is a selection, and why."""

    scope: str
    contracts: tuple[str, ...] = ()
    reason: str = ""

    def describe(self) -> str:
        """``whole catalog``, ``none executes it``, or the contract ids."""
        return ", ".join(self.contracts) if self.scope == SELECTED else self.scope

    def kit_arguments(self) -> list[str]:
        """The kit's options that run this selection."""
        return [word for contract in self.contracts for word in ("--contract", contract)]


def header_lines(source: str) -> dict[int, range]:
    """For each line inside a statement of ``source``, the lines coverage.py may record
    that statement under: from its first line (its first decorator's, if any) to its last,
    or, for a compound statement (``if``, ``def``, ``except``...), to the line before its
    body. The innermost statement wins; lines outside every statement are left out."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.stmt, ast.excepthandler)):
            continue
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        body = getattr(node, "body", None)
        last = body[0].lineno - 1 if body and body[0].lineno > node.lineno else node.end_lineno
        spans.append(range(first, (last or node.lineno) + 1))
    headers: dict[int, range] = {}
    # Widest first, so that a nested statement's span overwrites its parent's.
    for span in sorted(spans, key=len, reverse=True):
        headers.update(dict.fromkeys(span, span))
    return headers


def line_contracts(contexts_by_line: Mapping[int, Iterable[str]], source: str) -> LineContracts:
    """Each line of ``source`` mapped to the ids of the contracts that executed it
    (``AT_IMPORT`` among them when it ran at import), from coverage.py's contexts per line
    (``CoverageData.contexts_by_lineno``). A line of a multi-line statement gets what its
    statement was recorded under; a line no context executed, the empty set."""
    ran = {line: frozenset(contract_of(label) or AT_IMPORT for label in labels)
           for line, labels in contexts_by_line.items()}
    headers = header_lines(source)
    return {line: frozenset().union(*(ran.get(recorded, frozenset())
                                      for recorded in headers.get(line, (line,))))
            for line in range(1, len(source.splitlines()) + 1)}


def read_line_contracts(report_dir: Path, module_file: str, source: str) -> LineContracts:
    """line_contracts() of the file named ``module_file`` from the coverage data a kit run
    with ``--coverage`` left under ``report_dir``; BaselineCoverageError when there is none."""
    import coverage

    found = sorted(report_dir.glob(f"*/{DATA_FOLDER}/{DATA_FILE}"))
    if len(found) != 1:
        raise BaselineCoverageError(
            f"expected one {DATA_FOLDER}/{DATA_FILE} under {report_dir}, found {len(found)}")
    data = coverage.CoverageData(basename=str(found[0]))
    data.read()
    measured = [path for path in data.measured_files() if Path(path).name == module_file]
    if len(measured) != 1:
        raise BaselineCoverageError(f"{found[0]} does not measure one {module_file}: "
                                    f"it measures {sorted(data.measured_files())}")
    return line_contracts(data.contexts_by_lineno(measured[0]), source)


def changed_line_numbers(source: str, code: str, line: int) -> tuple[int, ...]:
    """The lines of ``source`` that ``code`` replaces or deletes, with ``line`` (where the
    mutation applies) and, where ``code`` only inserts lines, the lines either side."""
    before, after = source.splitlines(), code.splitlines()
    changed = {line}
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, start, end, _, _ in matcher.get_opcodes():
        if tag == "insert":
            changed.update(n for n in (start, start + 1) if 1 <= n <= len(before))
        elif tag != "equal":
            changed.update(range(start + 1, end + 1))
    return tuple(sorted(changed))


def select(lines: Iterable[int], contracts_by_line: LineContracts) -> Selection:
    """The contracts to run on a mutant that changes ``lines``: every contract that
    executed one of them; the whole catalog when one ran at import; none when no contract
    executed any."""
    ran = {line: contracts_by_line.get(line, frozenset()) for line in lines}
    at_import = [line for line, contracts in ran.items() if AT_IMPORT in contracts]
    if at_import:
        return Selection(WHOLE_CATALOG, reason=f"line {at_import[0]} runs at import")
    contracts = sorted(frozenset().union(*ran.values()))
    named = ("lines " if len(ran) > 1 else "line ") + ", ".join(map(str, ran))
    if not contracts:
        return Selection(UNREACHED, reason=f"no contract executes {named}")
    return Selection(SELECTED, tuple(contracts), f"the contracts that execute {named}")
