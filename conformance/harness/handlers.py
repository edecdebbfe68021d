"""Which request handler a server in the harness runs, and what it is told to do.

A contract names its handler with one of these small frozen classes, never with the
harness's own words for it: the process module alone turns a spec into what the agent reads.
Every kind reports what it observes (setup, handle, finish, ...) and accepts the options of
``HandlerSpec``; the kinds differ in their base class and in what handle() does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The name of the Exception class a handler raises when a spec asks it to raise one
# (``raises_in`` with ``raises="Exception"``): what handle_error() then sees.
HANDLER_EXCEPTION = "HandlerRaised"
# The attribute a handler whose spec says marks_server sets on self.server (to its pid).
MARK_ATTRIBUTE = "conformance_mark"
# What a handler may be asked to raise.
RAISABLE = ("Exception", "KeyboardInterrupt", "SystemExit")
# Where.
RAISING_STEPS = ("setup", "handle")


def is_datagram_class(server_class: str) -> bool:
    """True for the UDP and Unix datagram server classes, by the stdlib's naming."""
    return "UDP" in server_class or "Datagram" in server_class


@dataclass(frozen=True)
class HandlerSpec:
    """A handler class the harness makes from the implementation's own handler classes.

    The options every kind takes: ``raises_in`` ("setup" or "handle") makes that method
    raise ``raises`` (an Exception of the kit's own, KeyboardInterrupt or SystemExit);
    ``sleep`` seconds at the start of handle(), with ``sleep_prefix`` only over datagrams
    that start with it; ``shuts_down_server``: handle() calls shutdown() on the server the
    kit started (whatever self.server is), then goes on; ``marks_server``: handle() sets an
    attribute on self.server, MARK_ATTRIBUTE (see ServedServer.marked_by()); ``send_buffer``:
    the connection's SO_SNDBUF; ``attrs``: attributes of the handler class (timeout,
    disable_nagle_algorithm, ...)."""

    raises_in: str | None = None
    raises: str = "Exception"
    sleep: float | None = None
    sleep_prefix: bytes | None = None
    shuts_down_server: bool = False
    marks_server: bool = False
    send_buffer: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.raises_in is not None and self.raises_in not in RAISING_STEPS:
            raise ValueError(f"raises_in must be one of {RAISING_STEPS}, not {self.raises_in!r}")
        if self.raises not in RAISABLE:
            raise ValueError(f"raises must be one of {RAISABLE}, not {self.raises!r}")

    @staticmethod
    def reference(server_class: str, **options: Any) -> HandlerSpec:
        """The documentation's reference handler for ``server_class``, with ``options``:
        the uppercase echo on stream servers, the uppercase datagram reply on datagram
        servers."""
        if is_datagram_class(server_class):
            return DatagramEcho(**options)
        return Echo(**options)


@dataclass(frozen=True)
class Echo(HandlerSpec):
    """A BaseRequestHandler that loops recv(1024) and sendall(data.upper()) until EOF."""


@dataclass(frozen=True)
class DatagramEcho(HandlerSpec):
    """A BaseRequestHandler that sends the datagram back upper-cased, with
    socket.sendto(data.upper(), self.client_address)."""


@dataclass(frozen=True)
class Lines(HandlerSpec):
    """A StreamRequestHandler echoing each line upper-cased. A ``read N`` line makes it
    read exactly N more bytes with rfile.read(N) and echo those; a ``write N TEXT`` line
    makes it send N bytes of TEXT repeated, upper-cased, with one wfile.write(); a ``raw
    TEXT`` line makes it send TEXT as it is on the connection itself, past wfile; a
    ``close`` line makes it close wfile and return."""


@dataclass(frozen=True)
class DatagramFile(HandlerSpec):
    """A DatagramRequestHandler echoing rfile.read() upper-cased through wfile; ``silent``:
    it writes nothing to wfile."""

    silent: bool = False


@dataclass(frozen=True)
class Idle(HandlerSpec):
    """A BaseRequestHandler whose handle() returns at once (after ``sleep``, if given)."""


@dataclass(frozen=True)
class Defaults(HandlerSpec):
    """A BaseRequestHandler whose handle() is the base class's own, as setup() and finish()
    are for every kind: a handler class that overrides none of the three."""


@dataclass(frozen=True)
class UserClass(HandlerSpec):
    """The user's own handler class (``module:Class``, a module path made absolute),
    observed like the kit's own: its handle() runs as it is written."""

    spec: str = ""
