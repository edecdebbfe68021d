"""The contract catalog as a Markdown table (--list-contracts, docs/contracts.md)."""

from __future__ import annotations

from conformance.contracts.catalog import Contract


def markdown_table(contracts: list[Contract]) -> str:
    """One row per contract: id, level, statement, the servers it runs on, its reference."""
    rows = ["| id | level | statement | checked on | reference |",
            "| --- | --- | --- | --- | --- |"]
    for contract in contracts:
        section = contract.reference.rsplit("#", 1)[-1]
        rows.append(f"| `{contract.id}` | {contract.level} | {contract.statement} | "
                    f"{', '.join(contract.servers)} | [{section}]({contract.reference}) |")
    return "\n".join(rows) + "\n"
