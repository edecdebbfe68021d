"""Markdown tables for the README: the contract catalog and the targets' baselines."""

from __future__ import annotations

import os

from conformance.contracts.catalog import Contract
from conformance.expectations import load
from conformance.presets import Preset


def markdown_table(contracts: list[Contract]) -> str:
    """One row per contract: id, level, statement, the servers it runs on, its reference."""
    rows = ["| id | level | statement | checked on | reference |",
            "| --- | --- | --- | --- | --- |"]
    for contract in contracts:
        section = contract.reference.rsplit("#", 1)[-1]
        rows.append(f"| `{contract.id}` | {contract.level} | {contract.statement} | "
                    f"{', '.join(contract.servers)} | [{section}]({contract.reference}) |")
    return "\n".join(rows) + "\n"


def baselines_table(presets: list[Preset], expectations_dir: str) -> str:
    """One row per named target: what it checks, and each baseline entry with its reason."""
    rows = ["| target | what it checks | expected departures (baseline) |",
            "| --- | --- | --- |"]
    for preset in presets:
        path = os.path.join(expectations_dir, f"{preset.name}.toml")
        # Entries that share a reason (one cause, several contracts) are listed once.
        by_reason: dict[str, list[str]] = {}
        for e in load(path).entries:
            by_reason.setdefault(e.reason, []).append(
                f"`{e.contract}`" + (f" ({', '.join(e.servers)})" if e.servers else "")
                + (f" [python {e.python}]" if e.python else ""))
        listed = "<br>".join(f"{', '.join(names)}: {reason}"
                             for reason, names in by_reason.items()) or "none"
        rows.append(f"| `{preset.name}` | {preset.description} | {listed} |")
    return "\n".join(rows) + "\n"
