"""The documented server classes: which exist, and how each is composed.

Documentation, "Server Creation Notes": "There are five classes in an inheritance diagram,
four of which represent synchronous servers of four types" (BaseServer; TCPServer, and from
it UDPServer and UnixStreamServer; UnixDatagramServer from UDPServer), "Note that
UnixDatagramServer derives from UDPServer, not from UnixStreamServer". Of ForkingMixIn and
ThreadingMixIn: "Forking and threading versions of each type of server can be created using
these mix-in classes. For instance, ThreadingUDPServer is created as follows: class
ThreadingUDPServer(ThreadingMixIn, UDPServer): pass. The mix-in class comes first, since it
overrides a method defined in UDPServer." The Forking and Threading forms "are pre-defined
using the mix-in classes"; ForkingUnixStreamServer and ForkingUnixDatagramServer were added
in Python 3.12.

Classes are compared by name, as they appear in each class's method resolution order, so
that an implementation may wrap a stdlib class in a subclass of the same name.

BaseServer: "This is the superclass of all Server objects in the module. It defines the
interface, given below, but does not implement most of the methods, which is done in
subclasses." Of the methods it does implement, server_activate() and server_close() "May be
overridden"; in the stdlib's source, shutdown_request() "Called to shutdown and close an
individual request" calls close_request(), "Called to clean up an individual request".

The stdlib's __all__ lists every server class the module defines on the platform, so that
`from socketserver import *` imports each of them.

A user's own server class (--server-class) is checked against classes.mixin_first only: the
others are about the classes the implementation defines, and the kit has already found
which of them the user's class derives from to know what to check it against.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from conformance import bounds
from conformance.clients import waiting
from conformance.contracts._messages import calls_made
from conformance.contracts.catalog import (
    ALL_SERVERS,
    CONCURRENT_SERVERS,
    DOCS,
    SHOULD,
    SOURCE,
    SYNCHRONOUS_SERVERS,
    ServerCase,
    contract,
)
from conformance.harness import (
    ClassInspection,
    Echo,
    Harness,
    ServedServer,
    is_datagram_class,
)

CREATION_NOTES = DOCS + "#server-creation-notes"
# The inheritance diagram: the classes each base server derives from, and those it must not.
LINEAGE = {
    "TCPServer": (("BaseServer",), ()),
    "UDPServer": (("TCPServer", "BaseServer"), ()),
    "UnixStreamServer": (("TCPServer", "BaseServer"), ()),
    "UnixDatagramServer": (("UDPServer", "TCPServer", "BaseServer"), ("UnixStreamServer",)),
}
FORKING_UNIX_SINCE = (3, 12)
# What the client of a bare BaseServer sends; the reference handler echoes it upper-cased.
BARE_REQUEST = b"served by BaseServer's own methods"


def _chain(mro: tuple[str, ...]) -> str:
    return " -> ".join(mro)


def _excuse(server_class: str, harness: Harness) -> str | None:
    """Why this platform, or the target's Python version, need not have ``server_class``."""
    version = harness.facts.version
    if "Unix" in server_class and not hasattr(socket, "AF_UNIX"):
        return "this platform has no Unix domain sockets"
    if server_class.startswith("Forking") and not hasattr(os, "fork"):
        return "this platform has no os.fork()"
    if server_class.startswith("ForkingUnix") and version < FORKING_UNIX_SINCE:
        return (f"new in Python {'.'.join(map(str, FORKING_UNIX_SINCE))}, the target runs "
                f"{harness.facts.python_version}")
    return None


def _about_the_module(case: ServerCase, what: str) -> None:
    """Skip a contract about the implementation's own classes on a user's class."""
    if case.user_class is not None:
        pytest.skip(f"not applicable to a user server class: {what}")


def _inspect_existing(harness: Harness, server_class: str,
                      attrs: tuple[str, ...] = ()) -> ClassInspection:
    """The target's ``server_class``; skips when it has none (classes.exist judges that)."""
    found = harness.inspect(server_class, attrs=attrs)
    if not found.exists:
        pytest.skip(f"{harness.target_name} has no {server_class}")
    return found


@contract("classes.exist", servers=ALL_SERVERS, reference=CREATION_NOTES)
def test_classes_exist(harness: Harness, server_class: str, server_case: ServerCase) -> None:
    """Every documented server class exists where the platform allows it: TCPServer,
    UDPServer, UnixStreamServer and UnixDatagramServer (the Unix ones where there are Unix
    domain sockets) and their Threading and Forking forms (the Forking ones where there is
    os.fork(); ForkingUnixStreamServer and ForkingUnixDatagramServer from Python 3.12).

    A class the platform or the Python version excuses is not applicable when it is
    missing; when it is there, it must be a server class all the same."""
    _about_the_module(server_case, "it is about the classes the implementation defines")
    found = harness.inspect(server_class)
    excuse = _excuse(server_class, harness)
    if not found.exists and excuse:
        pytest.skip(f"not applicable: {excuse}")
    # "There are four basic concrete server classes"; the Threading and Forking forms "are
    # pre-defined using the mix-in classes"
    assert found.exists, f"the module has no {server_class}"
    assert "BaseServer" in found.mro, (
        f"{server_class} is not a server class: its classes, in lookup order, are "
        f"{_chain(found.mro)}, without BaseServer")


@contract("classes.star_import", servers=ALL_SERVERS, reference=SOURCE, level=SHOULD)
def test_classes_star_import(harness: Harness, server_class: str,
                             server_case: ServerCase) -> None:
    """Every server class the module has is among the names `from socketserver import *`
    binds (its __all__ lists it), so that code written against the stdlib's star import
    finds it."""
    _about_the_module(server_case, "it is about the names the implementation exports")
    found = _inspect_existing(harness, server_class)
    # The stdlib's __all__ lists each server class where the platform has it: "if
    # hasattr(os, "fork"): __all__.extend(["ForkingUDPServer", "ForkingTCPServer", ...])"
    assert found.star_imported, (
        f"the module has {server_class}, but `from {harness.facts.module} import *` does "
        "not bind it: its __all__ leaves it out")


@contract("classes.hierarchy", servers=SYNCHRONOUS_SERVERS, reference=CREATION_NOTES)
def test_classes_hierarchy(harness: Harness, server_class: str,
                           server_case: ServerCase) -> None:
    """The four base servers follow the documented inheritance diagram: TCPServer derives
    from BaseServer, UDPServer and UnixStreamServer from TCPServer, and UnixDatagramServer
    from UDPServer, not from UnixStreamServer."""
    _about_the_module(server_case, "it is about the implementation's four base servers, "
                                   f"and the class derives from its {server_class}")
    mro = _inspect_existing(harness, server_class).mro
    ancestors, strangers = LINEAGE[server_class]
    missing = [name for name in ancestors if name not in mro[1:]]
    # "There are five classes in an inheritance diagram"
    assert not missing, (
        f"{server_class} does not derive from {' nor '.join(missing)}: its classes, in "
        f"lookup order, are {_chain(mro)}")
    wrong = [name for name in strangers if name in mro]
    # "Note that UnixDatagramServer derives from UDPServer, not from UnixStreamServer"
    assert not wrong, (
        f"{server_class} derives from {' and '.join(wrong)}: its classes, in lookup order, "
        f"are {_chain(mro)}")


def _composition(server_class: str) -> tuple[str, str]:
    """("ThreadingMixIn", "TCPServer") for "ThreadingTCPServer", and so on."""
    prefix = "Threading" if server_class.startswith("Threading") else "Forking"
    return prefix + "MixIn", server_class[len(prefix):]


@contract("classes.mixin_first", servers=CONCURRENT_SERVERS,
          reference=DOCS + "#socketserver.ThreadingMixIn")
def test_classes_mixin_first(harness: Harness, server_class: str,
                             server_case: ServerCase) -> None:
    """A pre-defined Threading or Forking server puts its mixin first: ThreadingTCPServer
    looks its attributes up in ThreadingTCPServer, ThreadingMixIn, TCPServer, BaseServer
    order, so that its process_request() is ThreadingMixIn's, not BaseServer's; likewise
    every Forking form, and the UDP and Unix ones.

    The mixin may define process_request() itself or inherit it; what counts is that the
    lookup finds it before the base server's. A user's own class that derives from a
    mixin is held to the same order (a process_request() of its own comes first)."""
    mixin, base = _composition(server_class)
    found = _inspect_existing(harness, server_case.user_class or server_class,
                              attrs=("process_request",))
    shown = server_case.name
    mro = found.mro
    assert mixin in mro and base in mro, (
        f"{shown} does not derive from both {mixin} and {base}: its classes, in "
        f"lookup order, are {_chain(mro)}")
    # "The mix-in class comes first, since it overrides a method defined in UDPServer."
    assert mro.index(mixin) < mro.index(base), (
        f"{shown} looks its attributes up in {_chain(mro)}: {base} comes before "
        f"{mixin}, whose methods it shadows")
    owner = found.owner("process_request")
    assert owner in mro and mro.index(owner) < mro.index(base), (
        f"{shown}.process_request is {owner}'s, which the lookup "
        f"({_chain(mro)}) reaches only after {base}: the mixin's is shadowed")


# The stdlib's defaults of the limits a subclass tunes: on every server class, and on the
# datagram and forking ones.
QUEUE_DEFAULTS = {"request_queue_size": 5}
DATAGRAM_DEFAULTS = {"max_packet_size": 8192}
FORKING_DEFAULTS = {"max_children": 40}


def _defaults(server_class: str) -> dict[str, int]:
    defaults = dict(QUEUE_DEFAULTS)
    if is_datagram_class(server_class):
        defaults.update(DATAGRAM_DEFAULTS)
    if server_class.startswith("Forking"):
        defaults.update(FORKING_DEFAULTS)
    return defaults


@contract("classes.default_limits", servers=ALL_SERVERS, level=SHOULD, reference=SOURCE)
def test_classes_default_limits(harness: Harness, server_class: str,
                                server_case: ServerCase) -> None:
    """The implementation's own server classes keep the stdlib's default limits, which
    programs written against the stdlib inherit: request_queue_size 5 (the listen()
    backlog), max_packet_size 8192 on datagram servers, max_children 40 on forking servers.

    The documentation gives request_queue_size's default as "usually 5" and documents
    max_children without its default; Lib/socketserver.py sets all three. Whether a server
    keeps to the value it has is for lifecycle, udp.max_packet_size and
    resources.max_children to check."""
    _about_the_module(server_case, "its limits are the user's to choose")
    defaults = _defaults(server_class)
    found = _inspect_existing(harness, server_class, attrs=tuple(defaults))
    # TCPServer: "request_queue_size = 5"; UDPServer: "max_packet_size = 8192";
    # ForkingMixIn: "max_children = 40"
    changed = [f"{attr} = {found.value(attr)!r} (the stdlib's is {value})"
               for attr, value in defaults.items() if found.value(attr) != value]
    assert not changed, f"{server_class} has " + ", ".join(changed)


# Once, as TCPServer: the contract is about the implementation's BaseServer, the same
# whichever server class the run checks, and the kit's subclass of it serves TCP.
@contract("classes.base_server_defaults", servers=("TCPServer",), level=SHOULD,
          reference=SOURCE)
def test_classes_base_server_defaults(harness: Harness, serve: Callable[..., ServedServer],
                                      server_case: ServerCase) -> None:
    """BaseServer's own server_activate(), server_close(), shutdown_request() and
    close_request() can be inherited as they are: a direct BaseServer subclass that supplies
    only its socket (fileno() and get_request()) serves a request with handle_request(),
    its shutdown_request() calling close_request().

    TCPServer and UDPServer override all four, so only a class that derives from BaseServer
    itself runs them; the documentation leaves "most of the methods" to subclasses, but
    documents these as called by the server and as ones that "May be overridden", and the
    stdlib gives each a default. The kit's subclass has a loopback TCP socket, which the
    harness binds and listens on (BaseServer's server_activate() does nothing) and closes
    (its close_request() and server_close() close nothing)."""
    _about_the_module(server_case, "it is about the implementation's own BaseServer, "
                                   "which the kit subclasses itself")
    _inspect_existing(harness, "BaseServer")
    server = serve(Echo(), serve=False, bare_base=True)
    subclass = "a direct BaseServer subclass with only fileno() and get_request() of its own"
    # "server_activate(): Called by the server's constructor to activate the server. ...
    # May be overridden."
    activated = server.call("server_activate")
    assert activated.returned, (
        f"{subclass}: BaseServer's server_activate() "
        f"{activated.describe(bounds.SERVER_CALL)}, expected it to return")
    since = len(server.calls())
    with waiting(server.address, BARE_REQUEST, is_datagram=False) as client:
        handled = server.call("handle_request", timeout=bounds.HANDLER_REPORT)
        assert handled.returned, (
            f"{subclass}, with a client waiting: handle_request() "
            f"{handled.describe(bounds.HANDLER_REPORT)}, expected it to return")
        echo = client.receive(bounds.SERVED_ECHO)
    assert echo == BARE_REQUEST.upper(), (
        f"{subclass}, serving the reference handler: the client received {echo!r} within "
        f"{bounds.SERVED_ECHO:g}s, expected {BARE_REQUEST.upper()!r}")
    calls = server.wait_for_calls("shutdown_request", 1, since=since,
                                  timeout=bounds.HANDLER_REPORT)
    shutdowns = [call for call in calls if call.method == "shutdown_request"]
    assert len(shutdowns) == 1, (
        f"{subclass}: handle_request() called {calls_made(calls)}, with shutdown_request() "
        f"{len(shutdowns)} times, expected once")
    within = server.calls_within(shutdowns[0], timeout=bounds.HANDLER_REPORT)
    assert within is not None, (
        f"{subclass}: BaseServer's shutdown_request() reported no return within "
        f"{bounds.HANDLER_REPORT:g}s, though handle_request() returned")
    # shutdown_request(): "Called to shutdown and close an individual request.";
    # self.close_request(request)
    assert any(call.method == "close_request" for call in within), (
        f"{subclass}: BaseServer's shutdown_request() called {calls_made(within)}, "
        "expected close_request()")
    # "server_close(): Clean up the server. May be overridden."
    closed = server.call("server_close")
    assert closed.returned, (
        f"{subclass}: BaseServer's server_close() {closed.describe(bounds.SERVER_CALL)}, "
        "expected it to return")
