"""The terminal verdict: one line per contract, every failing case under it, and a summary."""

from __future__ import annotations

import textwrap
from typing import Any

from conformance.reporting.results import ContractResult, RunResults, statement

_LABELS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "xfailed": "XFAIL",
           "skipped": "SKIP"}
_MARKUP = {"passed": {"green": True}, "failed": {"red": True, "bold": True},
           "error": {"red": True}, "xfailed": {"yellow": True}, "skipped": {"yellow": True}}
NOT_BLOCKING = "should-level, not blocking"
_MESSAGE_LINES = 6
_INDENT = " " * 7

Line = tuple[str, dict[str, bool]]


def verdict_lines(results: RunResults) -> list[Line]:
    """(text, markup) pairs for the terminal; markup follows pytest's TerminalWriter."""
    lines: list[Line] = [(_header(results.target), {"bold": True})]
    width = max((len(r.contract.id) for r in results.sorted_results()), default=0)
    handler = results.target.get("handler")
    for result in results.sorted_results():
        outcome = result.outcome
        level = result.contract.level
        if outcome in ("failed", "error") and not result.blocking:
            level += " (non-strict, not failing the run)"
        lines.append((f"{_LABELS[outcome]:<6} {result.contract.id:<{width}}  "
                      f"{level:<6} {statement(result.contract, handler)}", _MARKUP[outcome]))
        lines += [(text, {}) for text in _details(result)]
    lines.append((summary_line(results), {"bold": True}))
    unfinished = results.unfinished()
    if unfinished:
        cause = {"max-time": "--max-time passed", "interrupted": "the run was interrupted"}
        cases = sum(len(servers) for servers in unfinished.values())
        lines.append((f"not finished ({cause.get(results.stopped or '', 'the run stopped')}): "
                      f"{len(unfinished)} contracts ({cases} cases): " + ", ".join(unfinished),
                      {"red": True, "bold": True}))
    return lines


def _header(target: dict[str, Any]) -> str:
    header = f"socketserver conformance of {target.get('name', '?')}"
    if target.get("python_version"):
        header += (f" ({target.get('implementation', '')} {target['python_version']},"
                   f" {target.get('module_file') or target.get('impl')})")
    return header


def _details(result: ContractResult) -> list[str]:
    """Under a failing contract, every failing server class with its own message and
    command; under a skipped or expected failure, why."""
    worst = result.worst_case
    if worst is None:
        return []
    if result.outcome in ("skipped", "xfailed"):
        return [_INDENT + worst.message.strip().splitlines()[0]] if worst.message else []
    if result.outcome not in ("failed", "error"):
        return []
    lines = []
    for case in result.worst_cases:
        message = (case.message or "").strip().splitlines()
        shown = message[:_MESSAGE_LINES] + (["..."] if len(message) > _MESSAGE_LINES else [])
        lines.append(textwrap.indent(f"{case.server}: " + "\n".join(shown), _INDENT))
        if case.reproduce:
            lines.append(f"{_INDENT}reproduce: {case.reproduce}")
    return lines


def summary_line(results: RunResults) -> str:
    """``N contracts: 3 passed, 1 failed, 1 failed (should-level, not blocking)``."""
    counts = results.summary()
    not_blocking = counts.pop("not_blocking")
    # Non-blocking failures are counted apart from the failures that fail the run.
    counts["failed"] -= not_blocking
    parts = [f"{count} {outcome}" for outcome, count in counts.items() if count]
    if not_blocking:
        parts.append(f"{not_blocking} failed ({NOT_BLOCKING})")
    noun = "contract" if len(results.contracts) == 1 else "contracts"
    return f"{len(results.contracts)} {noun}: " + ", ".join(parts)
