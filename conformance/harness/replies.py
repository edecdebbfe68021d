"""What the harness answers, as small frozen classes: the kit reads no reply by its keys
outside this module and the process module that sends the requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.harness.observations import address, value

# How a bounded call ended, in the agent's words.
_RETURNED = "ok"
_RAISED = "raised"
_HUNG = "hung"
# The stop report's word for a server whose serve_forever() nobody started.
_NOT_SERVING = "not serving"
# The stop report's word for the harness closing the socket to end a serve_forever().
_FORCED_SOCKET = "socket"


@dataclass(frozen=True)
class CallOutcome:
    """How a bounded call in the harness (a server method, the with statement) ended: it
    returned ``value``, raised (``exception`` is the class name, ``error`` the repr()), or
    had not returned when the bound passed (``hung``); ``elapsed`` seconds after it began."""

    hung: bool
    raised: bool
    elapsed: float
    value: Any = None
    exception: str | None = None
    error: str | None = None

    @property
    def returned(self) -> bool:
        return not (self.hung or self.raised)

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> CallOutcome:
        result = reply.get("result")
        return cls(hung=result == _HUNG, raised=result == _RAISED,
                   elapsed=float(reply.get("elapsed", 0.0)), value=value(reply.get("value")),
                   exception=reply.get("exception"), error=reply.get("error"))

    def describe(self, bound: float) -> str:
        """What the call did, in words, for a call bounded by ``bound`` seconds."""
        if self.hung:
            return f"did not return within {bound:g}s"
        if self.raised:
            return f"raised {self.error}"
        return f"returned after {self.elapsed:.2f}s"


@dataclass(frozen=True)
class StopReport:
    """How stopping a server went. shutdown() and server_close(), each bounded, say "ok",
    "raised" (``shutdown_error``, ``close_error``: the repr() of what) or "hung" ("not
    serving": no serve_forever() ran, so no shutdown() was called).
    ``serve_forever_exited``: every serve_forever() of the server had returned after
    shutdown(); where not, the harness ended them itself, by the means in ``forced``
    ("shutdown_request": the stdlib's shutdown flag; "socket": closing the listening
    socket), and ``serve_forever_stopped`` says whether that worked. ``socket_left_open``:
    the socket was still open after server_close(), and the harness closed it.
    ``stranded``: what still runs in the harness (loops, calls that never returned);
    ``children``: the harness's child processes left afterwards that were not there
    before the server was made. ``shutdown_waited``: how long the harness waited for
    shutdown() to return (a "hung" one did not return within it)."""

    shutdown: str
    close: str
    serve_forever_exited: bool
    children: tuple[int, ...] = ()
    shutdown_error: str | None = None
    close_error: str | None = None
    forced: tuple[str, ...] = ()
    serve_forever_stopped: bool = True
    socket_left_open: bool = False
    stranded: tuple[str, ...] = ()
    shutdown_waited: float = 0.0

    @property
    def shutdown_hung(self) -> bool:
        return self.shutdown == _HUNG

    @property
    def shutdown_failed(self) -> bool:
        """shutdown() was called and did not return normally."""
        return self.shutdown not in (_RETURNED, _NOT_SERVING)

    @property
    def close_hung(self) -> bool:
        return self.close == _HUNG

    @property
    def closed(self) -> bool:
        """server_close() returned normally."""
        return self.close == _RETURNED

    @property
    def forced_socket_closed(self) -> bool:
        """The harness closed the listening socket to end serve_forever()."""
        return _FORCED_SOCKET in self.forced

    @property
    def clean(self) -> bool:
        """Nothing of the server is left in the harness: it can serve the next test."""
        return self.serve_forever_stopped and not self.stranded and not self.children

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> StopReport:
        return cls(shutdown=reply["shutdown"], close=reply["close"],
                   serve_forever_exited=bool(reply["serve_forever_exited"]),
                   children=tuple(reply.get("children", ())),
                   shutdown_error=reply.get("shutdown_error"),
                   close_error=reply.get("close_error"),
                   forced=tuple(reply.get("forced", ())),
                   serve_forever_stopped=bool(reply.get("serve_forever_stopped", True)),
                   socket_left_open=bool(reply.get("socket_left_open")),
                   stranded=tuple(reply.get("stranded", ())),
                   shutdown_waited=float(reply.get("shutdown_waited", 0.0)))


@dataclass(frozen=True)
class Construction:
    """What a server's constructor did when given an address already in use: what it
    raised (``error``, the repr(); ``exception``, the class name; both None when it
    returned), how many times it called server_close(), and whether it left the socket it
    created open (the harness then closed it)."""

    error: str | None
    exception: str | None
    server_close_calls: int
    socket_left_open: bool

    @property
    def raised(self) -> bool:
        return self.exception is not None

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> Construction:
        return cls(error=reply.get("error"), exception=reply.get("error_type"),
                   server_close_calls=int(reply["server_close_calls"]),
                   socket_left_open=bool(reply["socket_left_open"]))


@dataclass(frozen=True)
class ServerState:
    """A server in the harness, as the harness sees it from inside.

    Its socket: ``socket_fileno`` (-1 once closed; None if there is no socket to ask),
    ``sockname``, ``listening``, ``reuse_address`` (SO_REUSEADDR is on), and
    ``socket_error`` for what asking failed with. The harness's process: its ``threads``
    (names). The server: ``server_address``, how many times serve_forever() has called
    service_actions(), whether the harness's own serve_forever() still runs, and the values
    of the attributes asked for (``attrs``)."""

    server_address: Any
    service_actions_calls: int
    serve_forever_running: bool
    socket_fileno: int | None = None
    sockname: Any = None
    listening: bool = False
    reuse_address: bool = False
    socket_error: str | None = None
    threads: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def socket_open(self) -> bool:
        return self.socket_fileno is not None and self.socket_fileno >= 0

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> ServerState:
        return cls(
            server_address=address(reply.get("server_address")),
            service_actions_calls=int(reply.get("service_actions", 0)),
            serve_forever_running=bool(reply.get("serve_forever_running")),
            socket_fileno=reply.get("socket_fileno"),
            sockname=address(reply.get("sockname")),
            listening=bool(reply.get("listening")),
            reuse_address=bool(reply.get("reuse_address")),
            socket_error=reply.get("socket_error"),
            threads=tuple(reply.get("threads", ())),
            attrs={name: value(sent) for name, sent in reply.get("attrs", {}).items()})


@dataclass(frozen=True)
class Processes:
    """The harness's child processes: ``children`` that run, and ``zombies``, those that
    exited and were not reaped (pids)."""

    children: tuple[int, ...]
    zombies: tuple[int, ...]

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> Processes:
        return cls(children=tuple(reply["children"]), zombies=tuple(reply["zombies"]))


@dataclass(frozen=True)
class HeldSockets:
    """The sockets the harness's process holds: the ``peers`` of its connected IPv4 and
    IPv6 sockets, and the local address of every stream socket that is not listening
    (``stream_connections``: for a server, a connection it accepted and still holds)."""

    peers: tuple[Any, ...]
    stream_connections: tuple[Any, ...]

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> HeldSockets:
        return cls(peers=tuple(address(peer) for peer in reply["peers"]),
                   stream_connections=tuple(address(name)
                                            for name in reply["stream_connections"]))


@dataclass(frozen=True)
class ClassInspection:
    """A class of the implementation, looked up by name: whether it exists, its method
    resolution order (class names), the class that defines each attribute asked about
    (None: none does) and the value found there, whether it subclasses each class asked
    about, and whether ``from module import *`` binds its name."""

    name: str
    exists: bool
    mro: tuple[str, ...] = ()
    owners: dict[str, str | None] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    subclass_of: dict[str, bool] = field(default_factory=dict)
    star_imported: bool = False

    def owner(self, attr: str) -> str | None:
        """The name of the class ``attr`` is found in (asked about with ``attrs``)."""
        return self.owners.get(attr)

    def value(self, attr: str) -> Any:
        """The class's value of ``attr`` (asked about with ``attrs``), as JSON carries it:
        a number, string, bool or None as it is, anything else as its repr; None when no
        class defines it."""
        return self.values.get(attr)

    @classmethod
    def from_reply(cls, name: str, reply: dict[str, Any]) -> ClassInspection:
        return cls(name=name, exists=bool(reply.get("exists")),
                   mro=tuple(reply.get("mro", ())), owners=dict(reply.get("owners", {})),
                   values=dict(reply.get("values", {})),
                   subclass_of=dict(reply.get("subclass_of", {})),
                   star_imported=bool(reply.get("star_imported")))


@dataclass(frozen=True)
class UserServerClass:
    """A user's own server class, as the harness loaded it: its ``spec`` (module:Class,
    as the harness was given it), its class ``name``, and its ``kind``: the documented
    server class it corresponds to by what it derives from (ThreadingTCPServer for a
    subclass of ThreadingMixIn and TCPServer)."""

    spec: str
    name: str
    kind: str


@dataclass(frozen=True)
class Hello:
    """What the harness says about itself once it runs: its pid, the interpreter
    (implementation name, version, executable), the module under test and the server
    classes it has, what kind of handler the user's own class is ("stream", "datagram",
    "base"; None without --handler), and the user's own server classes (--server-class)."""

    pid: int
    python_version: str
    implementation: str
    executable: str
    module: str
    module_file: str | None
    classes: tuple[str, ...]
    user_handler: str | None = None
    server_classes: tuple[UserServerClass, ...] = ()

    @property
    def version(self) -> tuple[int, int]:
        """The interpreter's (major, minor) version."""
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    @property
    def user_handler_is_datagram(self) -> bool:
        return self.user_handler == "datagram"

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> Hello:
        return cls(pid=int(reply["pid"]), python_version=reply["python_version"],
                   implementation=reply.get("implementation", "python"),
                   executable=reply.get("python", ""), module=reply.get("module", ""),
                   module_file=reply.get("module_file"),
                   classes=tuple(reply.get("classes", ())),
                   user_handler=reply.get("user_handler"),
                   server_classes=tuple(UserServerClass(c["spec"], c["name"], c["kind"])
                                        for c in reply.get("server_classes", ())))
