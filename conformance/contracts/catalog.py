"""The contract catalog: every contract's id, statement, level and documentation reference.

A contract is declared once, on the test that checks it, with ``@contract``; the test's
docstring is its statement. ``catalog()`` collects them all for reports and the README.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from conformance.harness import UserServerClass

DOCS = "https://docs.python.org/3/library/socketserver.html"
# The stdlib source: the reference of the should-level contracts the documentation is silent on.
SOURCE = "https://github.com/python/cpython/blob/main/Lib/socketserver.py"
MUST = "must"
SHOULD = "should"
LEVELS = (MUST, SHOULD)

# The server classes contracts run on, by group; every group lives here.
TCP_SERVERS = ("TCPServer", "ThreadingTCPServer", "ForkingTCPServer")
UDP_SERVERS = ("UDPServer", "ThreadingUDPServer", "ForkingUDPServer")
INET_SERVERS = TCP_SERVERS + UDP_SERVERS
THREADING_INET_SERVERS = ("ThreadingTCPServer", "ThreadingUDPServer")
UNIX_STREAM_SERVERS = ("UnixStreamServer", "ThreadingUnixStreamServer",
                       "ForkingUnixStreamServer")
UNIX_DATAGRAM_SERVERS = ("UnixDatagramServer", "ThreadingUnixDatagramServer",
                         "ForkingUnixDatagramServer")
STREAM_SERVERS = TCP_SERVERS + UNIX_STREAM_SERVERS
DATAGRAM_SERVERS = UDP_SERVERS + UNIX_DATAGRAM_SERVERS
ALL_SERVERS = STREAM_SERVERS + DATAGRAM_SERVERS
# The four base servers, which handle one request at a time.
SYNCHRONOUS_SERVERS = ("TCPServer", "UDPServer", "UnixStreamServer", "UnixDatagramServer")
# Their Threading and Forking forms, TCP, UDP and Unix.
CONCURRENT_SERVERS = tuple(name for name in ALL_SERVERS
                           if name.startswith(("Threading", "Forking")))
FORKING_SERVERS = tuple(name for name in CONCURRENT_SERVERS if name.startswith("Forking"))

MARKER = "contract"

_Test = TypeVar("_Test", bound=Callable[..., Any])


@dataclass(frozen=True)
class Contract:
    """A documented behaviour of the socketserver API that the kit checks."""

    id: str
    statement: str
    level: str
    reference: str
    servers: tuple[str, ...]
    # The first Python version whose stdlib has the behaviour; older targets are "not
    # applicable" (skipped), not failing.
    since: tuple[int, int] | None = None
    # True for contracts about what a handler does (not the server): these are the ones
    # --handler checks a user's own handler class against.
    handler_side: bool = False

    @property
    def test_name(self) -> str:
        return "test_" + self.id.replace(".", "_")

    @property
    def module_name(self) -> str:
        """The contract module that declares it: its id's prefix names it."""
        return "test_" + self.id.split(".", 1)[0]


@dataclass(frozen=True)
class ServerCase:
    """One server class a contract test runs on: the test's ``server_class`` parameter.

    ``name`` names the case: in the test id, the reports and a baseline's ``servers``.
    ``kind`` is the documented server class whose contracts apply, the one the test
    reasons about (it gets it as ``server_class``). ``user_class`` is the spec of a
    user's own server class (--server-class) that the case starts instead of the
    implementation's ``kind``; None for the implementation's own classes."""

    name: str
    kind: str
    user_class: str | None = None


def server_cases(contract: Contract,
                 user_classes: Iterable[UserServerClass] = ()) -> list[ServerCase]:
    """The cases ``contract`` runs: one per server class it is declared for; or, given a
    user's own server classes, one per user class whose kind is among those, so that a
    ThreadingTCPServer subclass runs wherever ThreadingTCPServer runs."""
    users = list(user_classes)
    if not users:
        return [ServerCase(name, name) for name in contract.servers]
    return [ServerCase(user.name, user.kind, user.spec) for user in users
            if user.kind in contract.servers]


_REGISTRY: dict[str, Contract] = {}


def _statement(test: Callable[..., Any]) -> str:
    paragraph = (test.__doc__ or "").strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines())


def contract(contract_id: str, *, servers: tuple[str, ...], reference: str,
             level: str = MUST, since: tuple[int, int] | None = None,
             handler_side: bool = False) -> Callable[[_Test], _Test]:
    """Declare the test below as the check of contract ``contract_id``.

    The test runs once per server class in ``servers`` (the plugin parametrizes its
    ``server_class`` with ``server_cases``: with --server-class, once per user class of
    one of those kinds); it is named after the id, in the module the id's prefix names
    (``flow.call_order`` is ``test_flow_call_order`` in ``test_flow.py``); its docstring's
    first paragraph is the contract's one-line statement. ``level`` is ``must`` (stated
    in the documentation) or ``should`` (stdlib behaviour the documentation does not
    state); ``since`` is the first Python version that has the behaviour, so that older
    targets skip it as not applicable; ``handler_side`` marks the contracts a user's own
    handler is checked against (``--handler``).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")

    def decorate(test: _Test) -> _Test:
        declared = Contract(contract_id, _statement(test), level, reference, tuple(servers),
                            since, handler_side)
        if test.__name__ != declared.test_name:
            raise ValueError(f"contract {contract_id} must be checked by {declared.test_name}")
        module = test.__module__.rpartition(".")[2]
        if module != declared.module_name:
            raise ValueError(f"contract {contract_id} must be declared in "
                             f"{declared.module_name}.py, not in {module}.py")
        if not declared.statement:
            raise ValueError(f"contract {contract_id} has no statement (docstring)")
        if _REGISTRY.setdefault(contract_id, declared) != declared:
            raise ValueError(f"contract id {contract_id} is declared twice")
        test.contract = declared  # type: ignore[attr-defined]
        return getattr(pytest.mark, MARKER)(contract_id)(test)

    return decorate


def catalog() -> list[Contract]:
    """Every contract the kit knows, sorted by id."""
    package = importlib.import_module("conformance.contracts")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("test_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return sorted(_REGISTRY.values(), key=lambda c: c.id)


def get(contract_id: str) -> Contract:
    """The contract with that id; KeyError if no contract module declares it."""
    if contract_id not in _REGISTRY:
        catalog()
    return _REGISTRY[contract_id]
