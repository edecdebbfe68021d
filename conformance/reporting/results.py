"""The results of a run, per contract and per server class, and their JSON form.

``results.json`` is the kit's one durable output: every other report is built from it.
Its schema is documented in docs/results.md; bump SCHEMA_VERSION on any incompatible change.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from conformance.contracts.catalog import Contract
from conformance.coverage.figures import CoverageResults
from conformance.expectations import BaselineFile

SCHEMA = "socketserver-conformance/results"
SCHEMA_VERSION = 2
OUTCOMES = ("passed", "failed", "xfailed", "skipped", "error")
# A contract is as bad as its worst case.
_SEVERITY = {"failed": 4, "error": 3, "xfailed": 2, "passed": 1, "skipped": 0}
_REFERENCE_HANDLER = "With the reference handler"


def statement(contract: Contract, handler: str | None = None) -> str:
    """The contract's statement; with a user's ``handler`` (--handler), one that speaks of
    the kit's reference handler names that handler instead."""
    text = contract.statement
    if not handler or not text.startswith(_REFERENCE_HANDLER):
        return text
    rest = text[len(_REFERENCE_HANDLER):]
    if rest.startswith(" ("):
        # Drop the reference handler's description, "(loop recv(1024), ...)": it nests.
        depth = 0
        for index, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == ")" and depth == 0:
                rest = rest[index + 1:]
                break
    return f"With the handler {handler}{rest}"


@dataclass
class Case:
    """One contract checked on one server class."""

    server: str
    nodeid: str
    outcome: str = "passed"
    message: str | None = None
    counterexample: str | None = None
    reproduce: str | None = None
    duration: float = 0.0
    # False for a should-level failure in a run without --strict: reported, not failing.
    blocking: bool = True
    # A strict expected failure that passed: the expectations entry is stale.
    xpassed: bool = False
    # The failing example's wire log: [{"t", "who", "event", "data"}], t in seconds.
    transcript: list[dict[str, Any]] | None = None

    def merge(self, phase: dict[str, Any]) -> None:
        """Fold in what the setup, call or teardown phase of the test reported."""
        self.duration += phase.get("duration", 0.0)
        outcome = phase["outcome"]
        if outcome == "passed":
            return
        if outcome in ("skipped", "xfailed") and self.outcome == "passed":
            self.outcome = outcome
        elif outcome in ("failed", "error") and self.outcome in ("passed", "skipped"):
            self.outcome = "error" if phase["when"] != "call" else "failed"
        else:
            return
        for key in ("message", "counterexample", "reproduce", "transcript"):
            setattr(self, key, phase.get(key))
        self.blocking = phase.get("blocking", True)
        self.xpassed = phase.get("xpassed", False)


@dataclass
class ContractResult:
    """A contract and its cases, with an outcome summarising them."""

    contract: Contract
    cases: list[Case] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if not self.cases:
            return "skipped"
        return max((c.outcome for c in self.cases), key=_SEVERITY.__getitem__)

    @property
    def blocking(self) -> bool:
        """Whether this contract's outcome fails the run."""
        return any(c.blocking for c in self.cases if c.outcome in ("failed", "error"))

    @property
    def worst_case(self) -> Case | None:
        bad = self.worst_cases
        return bad[0] if bad else None

    @property
    def worst_cases(self) -> list[Case]:
        """Every case whose outcome is the contract's, in the contract's server order."""
        order = {server: index for index, server in enumerate(self.contract.servers)}
        return sorted((c for c in self.cases if c.outcome == self.outcome),
                      key=lambda c: order.get(c.server, len(order)))

    def to_json(self, handler: str | None = None) -> dict[str, Any]:
        worst = self.worst_case
        return {
            "id": self.contract.id,
            "statement": statement(self.contract, handler),
            "level": self.contract.level,
            "reference": self.contract.reference,
            "outcome": self.outcome,
            "blocking": self.blocking,
            "message": worst.message if worst else None,
            "counterexample": worst.counterexample if worst else None,
            "reproduce": worst.reproduce if worst else None,
            "cases": [asdict(case) for case in self.cases],
        }


@dataclass
class RunResults:
    """Everything a run found about one target."""

    target: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    # --hypothesis-seed as given; None: Hypothesis chose (or the profile derandomizes).
    seed: str | None = None
    # --strict: should-level failures fail the run.
    strict: bool = False
    # --timeout-scale (or CONFORMANCE_TIMEOUT_SCALE): the factor on the kit's bounds.
    timeout_scale: float = 1.0
    # The kit's, pytest's, Hypothesis' and the kit's interpreter's versions.
    versions: dict[str, str] = field(default_factory=dict)
    baseline: BaselineFile | None = None
    contracts: dict[str, ContractResult] = field(default_factory=dict)
    # The server classes each selected contract is to be checked on, once collected.
    expected: dict[str, list[str]] = field(default_factory=dict)
    # Why the run ended before every selected case finished: "max-time", "interrupted".
    stopped: str | None = None
    # --coverage: what the run executed of the target, once measured at its end.
    coverage: CoverageResults | None = None
    _cases: dict[str, Case] = field(default_factory=dict)
    _finished: set[str] = field(default_factory=set)

    def add(self, contract: Contract, phase: dict[str, Any]) -> None:
        """Record one test phase of ``contract``'s check."""
        if phase.get("target") and not self.target.get("python_version"):
            self.target.update(phase["target"])
        case = self._cases.get(phase["nodeid"])
        if case is None:
            case = self._cases[phase["nodeid"]] = Case(phase["server"], phase["nodeid"])
            self.contracts.setdefault(contract.id, ContractResult(contract)).cases.append(case)
        case.merge(phase)
        if phase["when"] == "teardown":
            self._finished.add(phase["nodeid"])

    def expect(self, contract: Contract, server: str) -> None:
        """Note that the run selected ``contract`` on ``server``."""
        servers = self.expected.setdefault(contract.id, [])
        if server not in servers:
            servers.append(server)

    def finished(self, contract_id: str) -> bool:
        """Whether every selected case of this contract has finished (teardown included)."""
        return set(self.expected.get(contract_id, ())) <= self._done(contract_id)

    def unfinished(self) -> dict[str, list[str]]:
        """The selected cases that have not finished: contract id -> server classes."""
        left = {contract_id: [server for server in servers
                              if server not in self._done(contract_id)]
                for contract_id, servers in sorted(self.expected.items())}
        return {contract_id: servers for contract_id, servers in left.items() if servers}

    def _done(self, contract_id: str) -> set[str]:
        result = self.contracts.get(contract_id)
        return {case.server for case in result.cases
                if case.nodeid in self._finished} if result else set()

    def summary(self) -> dict[str, int]:
        """Contracts per outcome, and ``not_blocking``: how many of the failed ones do not
        fail the run (should-level, without --strict)."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for result in self.contracts.values():
            counts[result.outcome] += 1
        counts["not_blocking"] = sum(
            result.outcome == "failed" and not result.blocking
            for result in self.contracts.values())
        return counts

    def sorted_results(self) -> list[ContractResult]:
        return [self.contracts[key] for key in sorted(self.contracts)]

    def to_json(self, folder: str) -> dict[str, Any]:
        """The results as results.json in ``folder`` holds them (its paths are relative to
        that folder)."""
        unfinished = self.unfinished()
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "versions": self.versions,
            "target": self.target,
            "profile": self.profile,
            "seed": self.seed,
            "strict": self.strict,
            "timeout_scale": self.timeout_scale,
            "baseline": asdict(self.baseline) if self.baseline else None,
            # A run stopped before it had even collected its tests finished nothing.
            "complete": not unfinished and self.stopped is None,
            "stopped": self.stopped,
            "unfinished": [{"id": contract_id, "servers": servers}
                           for contract_id, servers in unfinished.items()],
            "summary": self.summary(),
            "coverage": self.coverage.to_json(folder) if self.coverage else None,
            "contracts": [result.to_json(self.target.get("handler"))
                          for result in self.sorted_results()],
        }

    def write(self, path: str) -> None:
        """Write ``results.json`` at ``path``, creating its folder."""
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        partial = path + ".partial"
        with open(partial, "w", encoding="utf-8") as out:
            json.dump(self.to_json(folder), out, indent=2)
            out.write("\n")
        # A reader (or a run killed mid-write) sees the old file or the new, never half.
        os.replace(partial, path)
