"""Datagram clients: send one datagram and wait, boundedly, for the reply."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from conformance import bounds
from conformance.clients import wire_log
from conformance.clients.ending import Deadline, Watch


@dataclass
class DatagramReply:
    """The client's own address and the reply it received (None if none came in time);
    without one, ``waited`` says how long it waited, in words ("within 3s", ...)."""

    client_address: Any
    reply: bytes | None
    waited: str = ""


@contextlib.contextmanager
def client_socket(address: Any, *, bind: bool = True) -> Iterator[socket.socket]:
    """A datagram socket of ``address``'s family: a path (Unix) or a host and port (IPv4 or
    IPv6). ``bind`` gives it an address of its own (port 0, or a path in a temporary
    folder) so that a reply can reach it; an unbound Unix client has none."""
    if isinstance(address, str):
        with tempfile.TemporaryDirectory(prefix="conformance-client-") as folder, \
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            if bind:
                sock.bind(os.path.join(folder, "client.sock"))
            yield sock
        return
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        yield sock


def talking_to(sock: socket.socket, address: Any) -> None:
    """Connect a datagram client to the server it talks to, so that it sends there and
    receives from there only: a late reply from an earlier server, to a port or path the
    system has since given this client, is not taken for this server's."""
    sock.connect(address if isinstance(address, str) else tuple(address))


def exchange(address: Any, datagram: bytes, *, timeout: float, bind: bool = True,
             watch: Watch | None = None) -> DatagramReply:
    """Send ``datagram`` from a fresh socket and read one reply, if one comes in time: within
    ``timeout``, or with a ``watch``, soon after the server is done with the request."""
    with client_socket(address, bind=bind) as sock:
        deadline = Deadline(timeout, watch, grace=bounds.DATAGRAM_GRACE)
        # Dated before send(): the handler may run before send() has returned here.
        began = time.time()
        talking_to(sock, address)
        sock.send(datagram)
        wire_log.record("client", "sent a datagram", datagram, at=began)
        reply = _receive(sock, deadline)
        if reply is None:
            wire_log.record("client", f"no reply {deadline.waited()}")
        else:
            wire_log.record("client", "received a datagram", reply)
        return DatagramReply(sock.getsockname(), reply,
                             deadline.waited() if reply is None else "")


def _receive(sock: socket.socket, deadline: Deadline) -> bytes | None:
    while True:
        wait = deadline.remaining()
        if wait <= 0:
            return None
        sock.settimeout(wait)
        try:
            return sock.recvfrom(1 << 16)[0]
        except socket.timeout:
            continue
        except OSError:
            return None


def exchange_all(address: Any, datagrams: list[bytes], *, timeout: float,
                 watch: Watch | None = None) -> list[DatagramReply]:
    """Send each datagram from a fresh socket of its own, in order and at once, then wait,
    at most ``timeout`` seconds in all (with a ``watch``, until soon after the server is done
    with them), for one reply on each of those sockets."""
    replies: dict[int, bytes | None] = {}
    with contextlib.ExitStack() as stack, selectors.DefaultSelector() as selector:
        socks = [stack.enter_context(client_socket(address)) for _ in datagrams]
        deadline = Deadline(timeout, watch, grace=bounds.DATAGRAM_GRACE)
        for number, (sock, datagram) in enumerate(zip(socks, datagrams)):
            talking_to(sock, address)
            sock.send(datagram)
            selector.register(sock, selectors.EVENT_READ, number)
        while len(replies) < len(socks):
            wait = deadline.remaining()
            if wait <= 0:
                break
            for key, _ in selector.select(wait):
                try:
                    replies[key.data] = key.fileobj.recv(1 << 16)  # type: ignore[union-attr]
                except OSError:
                    replies[key.data] = None
                selector.unregister(key.fileobj)
                deadline.received()
        return [DatagramReply(sock.getsockname(), replies.get(number),
                              "" if replies.get(number) is not None else deadline.waited())
                for number, sock in enumerate(socks)]
