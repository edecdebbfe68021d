"""Stream clients: write a payload in a given pattern and read the reply, several at once.

All clients of a run share one select loop with one deadline, so a server that hangs costs
a bounded wait and shows up as a short transcript, never as a hung test.
"""

from __future__ import annotations

import contextlib
import errno
import select
import selectors
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance import bounds
from conformance.clients import wire_log
from conformance.clients.ending import Deadline, Watch
from conformance.strategies import ClientPlan

# How long a client waits before trying again to connect to a Unix socket whose listen
# backlog is full.
_BACKLOG_RETRY = 0.01
# SO_LINGER on with a zero timeout: close() resets a TCP connection instead of ending it.
RESET_ON_CLOSE = struct.pack("ii", 1, 0)


def connect(address: Any, *, timeout: float | None = None) -> socket.socket:
    """A stream socket connected to ``address``: a path (Unix), or a host and port (IPv4
    or IPv6, by the host's form), within ``timeout`` (default: ``bounds.CONNECT``)."""
    timeout = bounds.CONNECT if timeout is None else timeout
    if isinstance(address, str):
        return _connect_unix(address, timeout)
    return socket.create_connection(tuple(address)[:2], timeout=timeout)


def _connect_unix(path: str, timeout: float) -> socket.socket:
    # With its listen backlog full, a Unix socket refuses a connect() that has a timeout
    # with EAGAIN instead of making it wait, as TCP does: wait here, within the timeout.
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(0.0, deadline - time.monotonic()))
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(_BACKLOG_RETRY)
        except OSError:
            sock.close()
            raise


def queued_connections(address: Any, *, most: int) -> int:
    """How many connections, made one after another, a stream server that accepts none
    lets complete before the system turns the next away, its listen() backlog full (at
    most ``most``). All of them are closed on return.

    One at a time, the count is exact: on loopback a connection completes within its
    connect() call (TCP's handshake, or a Unix socket's), or the system drops or refuses
    it at once; ``bounds.QUEUED_CONNECT`` is the last resort."""
    if isinstance(address, str):
        family, target = socket.AF_UNIX, address
    else:
        host, port = tuple(address)[:2]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        target = (host, port)
    with contextlib.ExitStack() as clients:
        for count in range(most):
            sock = clients.enter_context(socket.socket(family, socket.SOCK_STREAM))
            sock.setblocking(False)
            if sock.connect_ex(target) not in (0, errno.EINPROGRESS):
                return count
            _, writable, _ = select.select([], [sock], [], bounds.QUEUED_CONNECT)
            if not writable or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return count
        return most


@dataclass
class Transcript:
    """What one client sent, what it received, and whether it saw the server's EOF."""

    sent: bytes
    client_address: Any
    received: bytearray = field(default_factory=bytearray)
    eof: bool = False
    error: str | None = None
    finished_at: float | None = None
    # How long the client waited, in words ("within 5s", ...), for a client that gave up.
    waited: str = ""

    def describe(self) -> str:
        state = "EOF" if self.eof else (self.error or f"no EOF {self.waited}".rstrip())
        return f"sent {len(self.sent)} bytes, received {len(self.received)} bytes, then {state}"


class StreamClient:
    """A connected client following a list of (pause, chunk) writes."""

    def __init__(self, address: Any, chunks: list[tuple[float, bytes]], *,
                 expect: int, until_eof: bool, half_close: bool = True,
                 name: str = "client") -> None:
        self.name = name
        # The entry is dated when the connection began: the server may accept it, and its
        # handler start, before connect() has returned here.
        began = time.time()
        self.sock = connect(address)
        self.sock.setblocking(False)
        self.transcript = Transcript(b"".join(c for _, c in chunks), self.sock.getsockname())
        wire_log.record(name, f"connected from {self.transcript.client_address}", at=began)
        self._chunks = list(chunks)
        self._pending = b""
        self._next_write = time.monotonic() + (chunks[0][0] if chunks else 0.0)
        self._expect = expect
        self._until_eof = until_eof
        self._half_close = half_close
        self._write_done = False

    @property
    def done(self) -> bool:
        t = self.transcript
        if t.eof or t.error:
            return True
        return not self._until_eof and self._write_done and len(t.received) >= self._expect

    def wants_write(self, now: float) -> bool:
        return not self._write_done and now >= self._next_write

    def next_wakeup(self) -> float | None:
        return None if self._write_done else self._next_write

    def on_writable(self, now: float) -> None:
        if not self._pending:
            if not self._chunks:
                self._finish_writing()
                return
            self._pending = self._chunks.pop(0)[1]
        try:
            sent = self.sock.send(self._pending) if self._pending else 0
        except BlockingIOError:
            return
        except OSError as exc:
            self.transcript.error = f"send failed: {exc}"
            wire_log.record(self.name, self.transcript.error)
            return
        wire_log.record(self.name, "sent", self._pending[:sent])
        self._pending = self._pending[sent:]
        if not self._pending:
            if self._chunks:
                self._next_write = now + self._chunks[0][0]
            else:
                self._finish_writing()

    def _finish_writing(self) -> None:
        self._write_done = True
        if self._half_close:
            try:
                self.sock.shutdown(socket.SHUT_WR)
                wire_log.record(self.name, "half-closed (shutdown(SHUT_WR))")
            except OSError as exc:
                self.transcript.error = f"half-close failed: {exc}"
                wire_log.record(self.name, self.transcript.error)

    def on_readable(self) -> bool:
        """Read what has come; whether it was bytes (not an EOF, an error or nothing)."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return False
        except OSError as exc:
            self.transcript.error = f"recv failed: {exc}"
            wire_log.record(self.name, self.transcript.error)
            return False
        if data:
            self.transcript.received += data
            wire_log.record(self.name, "received", data)
        else:
            self.transcript.eof = True
            wire_log.record(self.name, "received EOF")
        return bool(data)

    def close(self) -> None:
        self.sock.close()


def run_clients(clients: list[StreamClient], *, timeout: float,
                watch: Watch | None = None) -> list[Transcript]:
    """Drive every client until it is done or ``timeout`` seconds have passed (with a
    ``watch``, until soon after the server is done with their requests)."""
    deadline = Deadline(timeout, watch)
    with selectors.DefaultSelector() as selector:
        for client in clients:
            selector.register(client.sock, selectors.EVENT_READ, client)
        while True:
            active = [c for c in clients if not c.done]
            wait = deadline.remaining() if active else 0.0
            if wait <= 0:
                break
            now = time.monotonic()
            for client in active:
                events = selectors.EVENT_READ
                if client.wants_write(now):
                    events |= selectors.EVENT_WRITE
                selector.modify(client.sock, events, client)
            wakeups = [w - now for c in active if (w := c.next_wakeup()) is not None and w > now]
            for key, mask in selector.select(min([wait, *wakeups])):
                _on_ready(key.data, mask, deadline)
    for client in clients:
        if not client.done:
            client.transcript.waited = deadline.waited()
            wire_log.record(client.name, f"stopped waiting: nothing more {deadline.waited()}")
    return [client.transcript for client in clients]


def _on_ready(client: StreamClient, mask: int, deadline: Deadline) -> None:
    if mask & selectors.EVENT_READ and client.on_readable():
        deadline.received()
    if mask & selectors.EVENT_WRITE and not client.done:
        client.on_writable(time.monotonic())
    if client.done and client.transcript.finished_at is None:
        client.transcript.finished_at = time.monotonic()


def exchange(address: Any, plans: list[ClientPlan], *, until_eof: bool = False,
             timeout: float, watch: Watch | None = None) -> list[Transcript]:
    """Connect one client per plan, all at once, and return their transcripts.

    Each client writes its payload in its pattern, half-closes, and reads until it has as
    many bytes as it sent (and, with ``until_eof``, until the server closes), for at most
    ``timeout`` seconds; with a ``watch``, only until soon after the server is done with
    their requests."""
    with exchanging(address, plans, until_eof=until_eof, timeout=timeout,
                    watch=watch) as transcripts:
        return transcripts


@contextlib.contextmanager
def exchanging(address: Any, plans: list[ClientPlan], *, until_eof: bool = False,
               timeout: float, watch: Watch | None = None) -> Iterator[list[Transcript]]:
    """``exchange``, with the clients still connected inside the block: a handler that is
    still busy with a request when its client has read all it expected (a wrong echo can
    be longer than the request) is not cut short by the client leaving."""
    clients = [StreamClient(address, plan.chunks(), expect=len(plan.payload),
                            until_eof=until_eof, name=f"client {number}")
               for number, plan in enumerate(plans, 1)]
    try:
        yield run_clients(clients, timeout=timeout, watch=watch)
    finally:
        for client in clients:
            client.close()


def recv_exactly(sock: socket.socket, count: int, *, timeout: float,
                 watch: Watch | None = None) -> bytes:
    """Read until ``count`` bytes, EOF or ``timeout`` seconds, whichever comes first (with a
    ``watch``, also until soon after the server is done with the request)."""
    deadline = Deadline(timeout, watch)
    received = bytearray()
    while len(received) < count:
        wait = deadline.remaining()
        if wait <= 0:
            break
        sock.settimeout(wait)
        try:
            data = sock.recv(count - len(received))
        except socket.timeout:
            continue
        except OSError:
            break
        if not data:
            break
        received += data
        deadline.received()
    return bytes(received)
