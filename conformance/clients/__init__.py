"""Client drivers: what the kit's side of a connection does, bounded in time."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

from conformance import bounds
from conformance.clients import datagram, stream
from conformance.clients.ending import Watch
from conformance.strategies import ONE_WRITE, ClientPlan, WritePattern


def round_trip(address: Any, payload: bytes, *, is_datagram: bool,
               watch: Watch | None = None) -> Any:
    """One client sends ``payload`` (one datagram, or one write and a half-close) and reads
    the reply (waiting, with a ``watch``, only until soon after the server is done with the
    request); returns the client's own address, as its socket reports it."""
    with staying_open(address, payload, is_datagram=is_datagram,
                      watch=watch) as client_address:
        return client_address


@contextlib.contextmanager
def staying_open(address: Any, payload: bytes, *, is_datagram: bool,
                 watch: Watch | None = None,
                 pattern: WritePattern = ONE_WRITE) -> Iterator[Any]:
    """``round_trip``, with a stream client still connected inside the block (see
    ``stream.exchanging``), writing in ``pattern``. Yields the client's own address."""
    if is_datagram:
        yield datagram.exchange(address, payload, timeout=bounds.DATAGRAM_REPLY,
                                watch=watch).client_address
        return
    with stream.exchanging(address, [ClientPlan(payload, pattern)],
                           timeout=bounds.echo_timeout(len(payload)),
                           watch=watch) as (transcript,):
        yield transcript.client_address


class Waiting:
    """A client that has sent its request and waits, reading nothing until asked."""

    def __init__(self, sock: socket.socket, sent: int, *, is_datagram: bool) -> None:
        self.sock = sock
        self._sent = sent
        self._is_datagram = is_datagram

    def receive(self, timeout: float) -> bytes | None:
        """What the client receives within ``timeout``: a datagram, or on a stream up to
        as many bytes as it sent (at least one); None for nothing (on a stream, an EOF or a
        reset is nothing too)."""
        if self._is_datagram:
            self.sock.settimeout(timeout)
            try:
                return self.sock.recvfrom(1 << 16)[0]
            except OSError:
                return None
        return stream.recv_exactly(self.sock, max(1, self._sent), timeout=timeout) or None


@contextlib.contextmanager
def waiting(address: Any, payload: bytes | None, *, is_datagram: bool,
            half_close: bool = True) -> Iterator[Waiting]:
    """One client that has sent ``payload`` and stays open, reading nothing, until the
    block ends: a datagram; or on a new stream connection, one write and, with
    ``half_close``, a half-close. A stream client with no ``payload`` only connects (a
    datagram client sends an empty datagram).

    The server may close a stream connection before all of it is sent: the client then
    stays, with what it could send."""
    if is_datagram:
        with datagram.client_socket(address) as sock:
            datagram.talking_to(sock, address)
            sock.send(payload or b"")
            yield Waiting(sock, len(payload or b""), is_datagram=True)
        return
    with contextlib.closing(stream.connect(address)) as sock:
        if payload is not None:
            with contextlib.suppress(OSError):
                sock.sendall(payload)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
        yield Waiting(sock, len(payload or b""), is_datagram=False)


@contextlib.contextmanager
def all_waiting(address: Any, payloads: list[bytes], *,
                is_datagram: bool) -> Iterator[list[Waiting]]:
    """``waiting``, for one client per payload, each half-closed on a stream."""
    with contextlib.ExitStack() as clients:
        yield [clients.enter_context(waiting(address, payload, is_datagram=is_datagram))
               for payload in payloads]
