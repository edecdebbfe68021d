"""What ``self.request`` is: the connected socket for streams, (data, socket) for datagrams.

Documentation, BaseRequestHandler.handle(): "The type of self.request is different for
datagram or stream services. For stream services, self.request is a socket object; for
datagram services, self.request is a pair of string and socket."

How much of a datagram that string holds is not documented: Lib/socketserver.py reads it
with recvfrom(max_packet_size), which udp.max_packet_size checks at should level.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import datagram, stream
from conformance.contracts._messages import difference, excerpt
from conformance.contracts.catalog import (
    DATAGRAM_SERVERS,
    DOCS,
    SHOULD,
    SOURCE,
    STREAM_SERVERS,
    contract,
)
from conformance.harness import ServedServer
from conformance.harness.observations import SOCK_DGRAM, SOCK_STREAM
from conformance.strategies import ClientPlan, WritePattern, datagrams, payloads

HANDLE_DOC = DOCS + "#socketserver.BaseRequestHandler.handle"
# The largest datagram the kit sends: within what UDP over IPv4 can carry.
MAX_DATAGRAM = 65000


@contract("request.tcp_socket", servers=STREAM_SERVERS, reference=HANDLE_DOC)
def test_request_tcp_socket(server: ServedServer) -> None:
    """In a stream handler (TCP or Unix), self.request is the connected stream socket (a
    socket.socket of type SOCK_STREAM) whose peer is the client.

    The id says TCP for its history; Unix stream servers are held to the same contract.
    The peer is compared with what the client's own socket reports: for an unbound Unix
    client both are empty."""

    @example(payload=b"hello")
    @given(payload=payloads(max_size=4096))
    def check(payload: bytes) -> None:
        (transcript,) = stream.exchange(server.address, [ClientPlan(payload, WritePattern())],
                                        timeout=bounds.echo_timeout(len(payload)))
        (handler,) = server.take_handlers(1, until="setup", timeout=bounds.HANDLER_REPORT)
        request = handler.request
        # "For stream services, self.request is a socket object"
        assert request.get("is_socket"), (
            f"self.request is a {request['type']}, not a socket.socket")
        assert request.get("so_type") == SOCK_STREAM, (
            f"self.request has socket type {request.get('so_type')}, not SOCK_STREAM")
        assert handler.peer == transcript.client_address, (
            f"self.request is connected to {handler.peer}, "
            f"not to the client at {transcript.client_address}")

    check()


@contract("request.udp_tuple", servers=DATAGRAM_SERVERS, reference=HANDLE_DOC,
          handler_side=True)
def test_request_udp_tuple(server: ServedServer) -> None:
    """In a datagram handler (UDP or Unix), self.request is a 2-tuple (data, socket): data
    is exactly the datagram the client sent (empty ones included), socket is the server's
    datagram socket, and socket.sendto(data.upper(), self.client_address) reaches the
    client (a Unix client bound to a path of its own)."""

    @example(sent=b"hello")
    @given(sent=datagrams())
    def check(sent: bytes) -> None:
        reply = datagram.exchange(server.address, sent, timeout=bounds.DATAGRAM_REPLY)
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, (
            f"no handler ran within {bounds.HANDLER_REPORT:g}s for a {len(sent)}-byte datagram")
        request = handlers[0].request
        # "for datagram services, self.request is a pair of string and socket"
        assert request.get("is_tuple") and request.get("length") == 2, (
            f"self.request is a {request['type']} of length {request.get('length')}, "
            "not a 2-tuple")
        assert handlers[0].datagram == sent, (
            f"self.request[0] is {excerpt(handlers[0].datagram or b'')}, "
            f"not the datagram sent, {excerpt(sent)}")
        sock = request.get("socket", {})
        assert sock.get("is_socket") and sock.get("so_type") == SOCK_DGRAM, (
            f"self.request[1] is a {sock.get('type')}, not a datagram socket.socket")
        assert handlers[0].setup.get("request_socket_is_server_socket"), (
            "self.request[1] is not the server's own socket (self.server.socket)")
        assert reply.reply == sent.upper(), (
            "no reply reached the client" if reply.reply is None
            else difference(reply.reply, sent.upper()))

    check()


def _tile(unit: bytes, size: int) -> bytes:
    return (unit * (size // len(unit) + 1))[:size]


@contract("udp.max_packet_size", servers=DATAGRAM_SERVERS, reference=SOURCE, level=SHOULD)
def test_udp_max_packet_size(server: ServedServer) -> None:
    """A datagram server reads each datagram with recvfrom(max_packet_size) (8192 in the
    stdlib): an empty datagram reaches the handler as b'', datagrams of up to
    max_packet_size bytes arrive intact, and longer ones arrive cut to their first
    max_packet_size bytes.

    The documentation does not say so; Lib/socketserver.py's UDPServer.get_request() does,
    and a handler that relies on one datagram being one whole request depends on it."""
    limit = server.state("max_packet_size").get("attrs", {}).get("max_packet_size")
    assert isinstance(limit, int) and limit > 0, (
        f"the server's max_packet_size is {limit!r}, not a positive number of bytes")
    sizes = st.one_of(st.just(0), st.integers(limit - 2, limit + 2),
                      st.integers(0, min(2 * limit, MAX_DATAGRAM)))

    @example(unit=b"x", size=limit + 1)
    @example(unit=b"x", size=0)
    @given(unit=st.binary(min_size=1, max_size=16), size=sizes)
    def check(unit: bytes, size: int) -> None:
        sent = _tile(unit, size)
        expected = sent[:limit]
        reply = datagram.exchange(server.address, sent, timeout=bounds.DATAGRAM_REPLY)
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, (
            f"no handler ran within {bounds.HANDLER_REPORT:g}s for a {size}-byte datagram")
        received = handlers[0].datagram or b""
        # UDPServer.get_request(): "self.socket.recvfrom(self.max_packet_size)"
        assert received == expected, (
            f"a {size}-byte datagram reached the handler as {len(received)} bytes, not "
            f"{len(expected)} (max_packet_size = {limit}): " + difference(received, expected))
        assert reply.reply == expected.upper(), (
            "no reply reached the client" if reply.reply is None
            else difference(reply.reply, expected.upper()))

    check()
