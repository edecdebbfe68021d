"""The terminal verdict: one line per contract, the first failure under it, and a summary."""

from __future__ import annotations

import textwrap

from conformance.reporting.results import RunResults

_LABELS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "xfailed": "XFAIL",
           "skipped": "SKIP"}
_MARKUP = {"passed": {"green": True}, "failed": {"red": True, "bold": True},
           "error": {"red": True}, "xfailed": {"yellow": True}, "skipped": {"yellow": True}}


def verdict_lines(results: RunResults) -> list[tuple[str, dict[str, bool]]]:
    """(text, markup) pairs for the terminal; markup follows pytest's TerminalWriter."""
    target = results.target
    header = f"socketserver conformance of {target.get('name', '?')}"
    if target.get("python_version"):
        header += (f" ({target.get('implementation', '')} {target['python_version']},"
                   f" {target.get('module_file') or target.get('impl')})")
    lines: list[tuple[str, dict[str, bool]]] = [(header, {"bold": True})]
    width = max((len(r.contract.id) for r in results.sorted_results()), default=0)
    for result in results.sorted_results():
        outcome = result.outcome
        level = result.contract.level
        if outcome in ("failed", "error") and not result.blocking:
            level += " (non-strict, not failing the run)"
        lines.append((f"{_LABELS[outcome]:<6} {result.contract.id:<{width}}  "
                      f"{level:<6} {result.contract.statement}", _MARKUP[outcome]))
        worst = result.worst_case
        if outcome in ("failed", "error") and worst is not None:
            message = (worst.message or "").strip().splitlines()
            shown = message[:6] + (["..."] if len(message) > 6 else [])
            lines.append((textwrap.indent(f"{worst.server}: " + "\n".join(shown), " " * 7),
                          {}))
            if worst.reproduce:
                lines.append((f"       reproduce: {worst.reproduce}", {}))
        elif outcome in ("skipped", "xfailed") and worst is not None and worst.message:
            lines.append((f"       {worst.message.strip().splitlines()[0]}", {}))
    counts = results.summary()
    parts = [f"{count} {outcome}" for outcome, count in counts.items() if count]
    noun = "contract" if len(results.contracts) == 1 else "contracts"
    lines.append((f"{len(results.contracts)} {noun}: " + ", ".join(parts), {"bold": True}))
    return lines
