"""The handler's view of who it serves: ``self.client_address`` and ``self.server``; and
what BaseRequestHandler's own methods do.

Documentation, BaseRequestHandler.handle(): "the request is available as self.request; the
client address as self.client_address; and the server instance as self.server, in case it
needs access to per-server information." setup(), handle() and finish(): "The default
implementation does nothing."
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import datagram, stream
from conformance.contracts._kept_open import kept_open
from conformance.contracts.catalog import ALL_SERVERS, DOCS, contract
from conformance.harness import HANDLER_LIFECYCLE, Defaults, ServedServer
from conformance.strategies import ClientPlan, WritePattern, payloads

HANDLE_DOC = DOCS + "#socketserver.BaseRequestHandler.handle"


@contract("handler.client_address", servers=ALL_SERVERS, reference=HANDLE_DOC)
def test_handler_client_address(server: ServedServer) -> None:
    """self.client_address is the client's own address, as getsockname() reports it on the
    client's socket, for TCP, UDP and Unix servers alike (an unbound Unix stream client's
    address is empty)."""

    with kept_open(server) as set_up:

        @example(payload=b"hello", clients=1)
        @given(payload=payloads(max_size=1024), clients=st.integers(1, 3))
        def check(payload: bytes, clients: int) -> None:
            for _ in range(clients):
                client_address, handler = set_up(payload)
                # "the client address as self.client_address"
                assert handler.client_address == client_address, (
                    f"self.client_address is {handler.client_address!r}, but the "
                    f"client's address is {client_address!r}")

        check()


@contract("handler.server", servers=ALL_SERVERS, reference=HANDLE_DOC)
def test_handler_server(server: ServedServer) -> None:
    """self.server is the server instance that accepted the request."""

    with kept_open(server) as set_up:

        @example(payload=b"hello")
        @given(payload=payloads(max_size=1024))
        def check(payload: bytes) -> None:
            _, handler = set_up(payload)
            # "and the server instance as self.server"
            assert handler.setup.server_is_server, (
                f"self.server is a {handler.setup.server_type} that is not the "
                f"{server.server_class} serving the request")

        check()


@contract("handler.default_methods", servers=ALL_SERVERS, reference=HANDLE_DOC)
def test_handler_default_methods(serve: Callable[..., ServedServer], server_class: str) -> None:
    """A BaseRequestHandler subclass that overrides none of setup(), handle() and finish()
    serves a request without error: the defaults do nothing, so the client receives
    nothing, no byte on a stream and no reply to a datagram.

    The stream client sends nothing and half-closes (a server that closes a connection
    with unread bytes may reset it rather than end it), then reads until the server is
    done with the connection; that the server closes it is eof.ends_handler's to check."""
    server = serve(Defaults())
    if server.is_datagram:
        reply = datagram.exchange(server.address, b"hello", timeout=bounds.DATAGRAM_REPLY,
                                  watch=server.watch())
        answered = None if reply.reply is None else f"got the reply {reply.reply!r}"
    else:
        (transcript,) = stream.exchange(server.address, [ClientPlan(b"", WritePattern())],
                                        until_eof=True, timeout=bounds.EOF,
                                        watch=server.watch(closed=True))
        answered = (None if not transcript.received
                    else f"{transcript.describe()}, not 0 bytes")
    handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
    assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
    handler = handlers[0]
    # handle(): "The default implementation does nothing."
    assert not handler.handle_raised, (
        f"BaseRequestHandler.handle() raised {handler.handle_error.error}: the default "
        "implementation does nothing")
    assert handler.steps == HANDLER_LIFECYCLE, (
        f"the handler went through {handler.steps}, not {HANDLER_LIFECYCLE}")
    assert answered is None, f"with the default handle(), the client {answered}"
