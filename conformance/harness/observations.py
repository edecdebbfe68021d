"""What handlers and the server reported, rebuilt from the agent's events.

The agent reports every step of every handler instance (setup, handle, finish, ...) and
every call of the server's request-handling methods (and the return of shutdown_request()).
Here they become a ``Handler`` per instance, whose steps have named reports, and a
``ServerCall`` per method call, kept in ``Reports`` as they come in; no other module reads
the agent's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# A handler's steps, as Handler.steps lists them (and failure messages show them).
SETUP = "setup"
# setup() returned (reported by StreamRequestHandler and DatagramRequestHandler kinds).
SETUP_RETURNED = "setup-done"
HANDLE = "handle"
SHUTDOWN_RETURNED = "shutdown-returned"
HANDLE_RETURNED = "handle-returned"
HANDLE_RAISED = "handle-raised"
FINISH = "finish"
# setup() raised: the server calls no finish() after it (the documented order).
SETUP_RAISED = "setup-raised"
# The steps after which a handler instance reports nothing more.
ENDED = (FINISH, SETUP_RAISED)
# The steps of a handler instance that set up, handled its request and finished.
HANDLER_LIFECYCLE = [SETUP, HANDLE, HANDLE_RETURNED, FINISH]

# handle() of the reference handlers ended: at EOF (streams); after the one datagram;
# the user's handler returned, for a reason it does not say.
_ENDED_AT_EOF = "eof"
_ENDED_UNSAID = "returned"

# The handler uid of the server's own reports, and their kinds: a method was called, or
# returned (reported for shutdown_request() only).
SERVER = "server"
_CALLED = "call"
METHOD_RETURNED = "returned"
_SHUTDOWN_REQUEST = "shutdown_request"


def address(value: Any) -> Any:
    """An address as the agent sends it (lists for tuples), comparable with socket results."""
    if isinstance(value, list):
        return tuple(address(item) for item in value)
    return value


def value(sent: Any) -> Any:
    """A Python value as the agent sends it: tuples as lists, bytes as {"bytes": hex},
    anything else JSON cannot carry as its repr()."""
    if isinstance(sent, list):
        return tuple(value(item) for item in sent)
    if isinstance(sent, dict) and set(sent) == {"bytes"}:
        return bytes.fromhex(sent["bytes"])
    return sent


@dataclass(frozen=True)
class RequestView:
    """What ``self.request`` was in a handler: a socket, or a sequence such as the
    (data, socket) pair of a datagram request."""

    type: str
    is_socket: bool = False
    # A socket's: SO_TYPE (SOCK_STREAM, SOCK_DGRAM) and the peer it is connected to.
    so_type: int | None = None
    peer: Any = None
    # A sequence's: whether it is a tuple, its length, and of a pair, the data (when it
    # is bytes) and the socket.
    is_tuple: bool = False
    length: int | None = None
    data: bytes | None = None
    socket: RequestView | None = None

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> RequestView:
        data = report.get("data")
        inner = report.get("socket")
        return cls(type=report.get("type", "?"), is_socket=bool(report.get("is_socket")),
                   so_type=report.get("so_type"), peer=address(report.get("peername")),
                   is_tuple=bool(report.get("is_tuple")), length=report.get("length"),
                   data=None if data is None else bytes.fromhex(data),
                   socket=None if inner is None else cls.from_report(inner))


@dataclass(frozen=True)
class SetupReport:
    """What a handler instance saw as its setup() began."""

    pid: int
    thread: str
    time: float
    # Its place among all of this server's reports, in the order the harness got them.
    position: int
    client_address: Any
    request: RequestView
    # Whether self.server is the server instance the kit started, and its type.
    server_is_server: bool
    server_type: str
    # A datagram request's socket is self.server.socket.
    request_socket_is_server_socket: bool
    # The uid of the request this very instance had already handled; None when new.
    reused_from: str | None


@dataclass(frozen=True)
class StreamFacts:
    """A StreamRequestHandler's or DatagramRequestHandler's connection and files, after
    setup() returned or after finish()."""

    time: float
    position: int
    # self.request.gettimeout() and TCP_NODELAY (None where they do not apply).
    timeout: float | None
    nodelay: bool | None
    rfile_closed: bool
    wfile_closed: bool
    # After setup() only: what wfile.fileno() and the connection's fileno() returned, or
    # the repr() of what they raised.
    wfile_fileno: int | None = None
    wfile_fileno_error: str | None = None
    connection_fileno: int | None = None
    connection_fileno_error: str | None = None


@dataclass(frozen=True)
class ShortRead:
    """An rfile.read(asked) that returned ``got`` bytes, with more on the way."""

    asked: int
    got: int


@dataclass(frozen=True)
class ShortWrite:
    """A wfile.write() of ``length`` bytes that returned ``written``."""

    length: int
    written: Any


@dataclass(frozen=True)
class HandleReturn:
    """handle() returned: when, why, and what the kit's handler counted on the way."""

    time: float
    ended_by: str
    # The reference handlers: bytes received (the datagram's length, for datagrams).
    received: int | None = None
    # The Lines handler: lines rfile.readline() returned, its short reads and writes, and
    # what wfile.writable() gave.
    lines: int | None = None
    short_reads: tuple[ShortRead, ...] = ()
    short_writes: tuple[ShortWrite, ...] = ()
    wfile_writable: Any = None

    @property
    def ended_at_eof(self) -> bool | None:
        """True when handle() returned because recv() gave b'' (the reference stream
        handlers); None when the handler does not say why (a user's handler)."""
        if self.ended_by == _ENDED_UNSAID:
            return None
        return self.ended_by == _ENDED_AT_EOF


@dataclass(frozen=True)
class HandleError:
    """handle() raised: the exception's repr() and class name, and when."""

    time: float
    error: str
    error_type: str


@dataclass(frozen=True)
class FinishError:
    """The handler base class's finish() raised: the exception's repr() and class name."""

    error: str
    error_type: str


@dataclass(frozen=True)
class Observation:
    """One thing the harness saw, for a failure's transcript: when (seconds since the
    epoch), who ("handler 2", "server"), and what."""

    t: float
    who: str
    event: str


@dataclass
class Handler:
    """One handler instance: its uid and its reports in order (with their places among
    all of the server's reports)."""

    uid: str
    events: list[dict[str, Any]] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    @property
    def steps(self) -> list[str]:
        """The steps it reported, in order: setup, handle, handle-returned, finish, ..."""
        return [event["kind"] for event in self.events]

    def has(self, step: str) -> bool:
        return step in self.steps

    def _first(self, step: str) -> tuple[dict[str, Any], int]:
        for event, position in zip(self.events, self.positions):
            if event["kind"] == step:
                return event, position
        raise AssertionError(f"handler {self.uid} reported {self.steps}: no {step!r} among "
                             "them (a report lost, or a handler that skipped it)")

    @property
    def finished(self) -> bool:
        """Its finish() ran."""
        return self.has(FINISH)

    @property
    def ended(self) -> bool:
        """It has nothing more to do: its finish() ran, or its setup() raised."""
        return any(self.has(step) for step in ENDED)

    @property
    def setup_returned(self) -> bool:
        """Its setup() returned (reported by the StreamRequestHandler and
        DatagramRequestHandler kinds only)."""
        return self.has(SETUP_RETURNED)

    @property
    def handle_returned(self) -> bool:
        return self.has(HANDLE_RETURNED)

    @property
    def handle_raised(self) -> bool:
        return self.has(HANDLE_RAISED)

    @property
    def shutdown_returned(self) -> bool:
        """The shutdown() its handle() called (HandlerSpec shuts_down_server) returned."""
        return self.has(SHUTDOWN_RETURNED)

    @property
    def setup(self) -> SetupReport:
        event, position = self._first(SETUP)
        return SetupReport(
            pid=event["pid"], thread=event["thread"], time=event["time"], position=position,
            client_address=address(event["client_address"]),
            request=RequestView.from_report(event["request"]),
            server_is_server=bool(event.get("server_is_server")),
            server_type=event.get("server_type", "?"),
            request_socket_is_server_socket=bool(event.get("request_socket_is_server_socket")),
            reused_from=event.get("previous_uid"))

    @property
    def after_setup(self) -> StreamFacts:
        """Its connection and files once setup() returned."""
        return _stream_facts(*self._first(SETUP_RETURNED))

    @property
    def handle_return(self) -> HandleReturn:
        event, _ = self._first(HANDLE_RETURNED)
        return HandleReturn(
            time=event["time"], ended_by=event.get("ended_by", "?"),
            received=event.get("received"), lines=event.get("lines"),
            short_reads=tuple(ShortRead(*pair) for pair in event.get("short_reads", ())),
            short_writes=tuple(ShortWrite(*pair) for pair in event.get("short_writes", ())),
            wfile_writable=event.get("wfile_writable"))

    @property
    def handle_error(self) -> HandleError:
        event, _ = self._first(HANDLE_RAISED)
        return HandleError(time=event["time"], error=event["error"],
                           error_type=event["error_type"])

    @property
    def finish(self) -> StreamFacts:
        """When its finish() ran, and (stream and datagram file handlers) its files then."""
        return _stream_facts(*self._first(FINISH))

    @property
    def finish_error(self) -> FinishError | None:
        """What the handler base class's finish() raised; None when it returned."""
        event, _ = self._first(FINISH)
        if "error_type" not in event:
            return None
        return FinishError(error=event["error"], error_type=event["error_type"])

    # -- what it was given -----------------------------------------------------------

    @property
    def request(self) -> RequestView:
        return self.setup.request

    @property
    def client_address(self) -> Any:
        return self.setup.client_address

    @property
    def peer(self) -> Any:
        """The request socket's peer (TCP), independent of what client_address says."""
        return self.request.peer

    @property
    def datagram(self) -> bytes | None:
        return self.request.data

    @property
    def pid(self) -> int:
        return self.setup.pid

    @property
    def ran_in(self) -> str:
        setup = self.setup
        return f"pid {setup.pid}, thread {setup.thread!r}"


def _stream_facts(event: dict[str, Any], position: int) -> StreamFacts:
    return StreamFacts(time=event["time"], position=position, timeout=event.get("timeout"),
                       nodelay=event.get("nodelay"),
                       rfile_closed=bool(event.get("rfile_closed")),
                       wfile_closed=bool(event.get("wfile_closed")),
                       wfile_fileno=event.get("wfile_fileno"),
                       wfile_fileno_error=event.get("wfile_fileno_error"),
                       connection_fileno=event.get("connection_fileno"),
                       connection_fileno_error=event.get("connection_fileno_error"))


@dataclass(frozen=True)
class ServerCall:
    """One call of a server method (get_request, verify_request, ..., handle_error), as the
    server reported it on entry."""

    method: str
    pid: int
    thread: str
    time: float
    # Its place among all of this server's reports, in the order the harness got them.
    position: int
    # verify_request, process_request, finish_request and handle_error: the
    # client_address they were given.
    client_address: Any = None
    # handle_error: the class name of the exception being handled.
    error_type: str | None = None


@dataclass(frozen=True)
class _Return:
    """A server method returned (or raised): reported for shutdown_request() only."""

    method: str
    pid: int
    thread: str
    position: int


class Reports:
    """Everything one server's handlers and the server itself reported, in the order the
    harness received it; ``add`` takes new events as they come."""

    def __init__(self) -> None:
        self.count = 0
        # uid -> the handler's events and positions, in the order their setup() ran
        self._handlers: dict[str, Handler] = {}
        self._calls: list[ServerCall] = []
        self._returns: list[_Return] = []

    def add(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            position = self.count
            self.count += 1
            if event["handler"] != SERVER:
                handler = self._handlers.setdefault(event["handler"], Handler(event["handler"]))
                handler.events.append(event)
                handler.positions.append(position)
            elif event["kind"] == METHOD_RETURNED:
                self._returns.append(_Return(event["method"], event["pid"], event["thread"],
                                             position))
            elif event["kind"] == _CALLED:
                self._calls.append(ServerCall(
                    method=event["method"], pid=event["pid"], thread=event["thread"],
                    time=event["time"], position=position,
                    client_address=address(event.get("client_address")),
                    error_type=event.get("error_type")))

    def handlers(self, start: int = 0) -> list[Handler]:
        """The handler instances from the ``start``-th on, ordered by when each started: as
        they were reported so far (later reports do not change them)."""
        return [Handler(h.uid, list(h.events), list(h.positions))
                for h in list(self._handlers.values())[start:]]

    def calls(self) -> list[ServerCall]:
        """The server's own reported method calls (get_request, verify_request, ...), in
        order."""
        return list(self._calls)

    def within(self, call: ServerCall) -> list[ServerCall] | None:
        """The calls reported, in ``call``'s own process and thread, between ``call`` and its
        return; None if no return of it was reported (shutdown_request() only reports it)."""
        end = next((r.position for r in self._returns
                    if r.method == call.method and r.pid == call.pid
                    and r.thread == call.thread and r.position > call.position), None)
        if end is None:
            return None
        return [c for c in self._calls if call.position < c.position < end
                and c.pid == call.pid and c.thread == call.thread]

    def served(self, since: float, requests: int, *, closed: bool) -> bool:
        """Whether the server is done with ``requests`` requests made at ``since`` (a
        time.time()) or later: the first that many handler instances set up since then have
        ended (finish() ran or setup() raised) and, with ``closed``, the server's
        shutdown_request() has then returned in each one's own process and thread."""
        new = [h for h in self._handlers.values()
               if h.events[0]["kind"] == SETUP and h.events[0]["time"] >= since]
        if len(new) < requests:
            return False
        return all(h.ended and (not closed or self._shut_down(h)) for h in new[:requests])

    def _shut_down(self, handler: Handler) -> bool:
        # The request-handling of stdlib servers: finish_request() (the handler), then
        # shutdown_request() in the same thread (of the child process, when forking).
        start = handler.events[0]
        return any(r.method == _SHUTDOWN_REQUEST and r.pid == start["pid"]
                   and r.thread == start["thread"] and r.position > handler.positions[-1]
                   for r in self._returns)
