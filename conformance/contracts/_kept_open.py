"""Clients that send a request and stay connected, unread, until a test is done with them.

A contract whose answer is what a handler saw (its self.server, its self.client_address) has
it as soon as the handler reports setup(). Its clients need not wait for the reply, which a
server whose handlers cannot wait for their client (eventlet-green's green threads) would
make them wait out to its bound on every example. They stay connected until the test ends,
by when the server has finished with them, so that no handler meets a closed connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from conformance import bounds
from conformance.clients import waiting
from conformance.harness import Handler, ServedServer


@contextlib.contextmanager
def kept_open(server: ServedServer) -> Iterator[Callable[[bytes], tuple[Any, Handler]]]:
    """A function that makes a new client send its payload to ``server`` (a datagram, or
    one write and a half-close) and returns the client's own address, as its socket
    reports it, with the handler instance that served it, once that reported setup()
    (within ``bounds.HANDLER_REPORT``; an AssertionError says none ran). The clients stay
    connected until the block ends, after the handlers they started have finished (within
    ``bounds.HANDLER_REPORT``)."""
    server.poll()
    since = len(server.handlers())
    with contextlib.ExitStack() as clients:

        def set_up(payload: bytes) -> tuple[Any, Handler]:
            client = clients.enter_context(
                waiting(server.address, payload, is_datagram=server.is_datagram))
            handlers = server.take_handlers(1, until="setup", timeout=bounds.HANDLER_REPORT)
            assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
            return client.sock.getsockname(), handlers[0]

        yield set_up
        server.handlers_finished(since=since, every=True, timeout=bounds.HANDLER_REPORT)
