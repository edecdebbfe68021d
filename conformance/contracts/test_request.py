"""What ``self.request`` is: the connected socket for streams, (data, socket) for datagrams.

Documentation, BaseRequestHandler.handle(): "The type of self.request is different for
datagram or stream services. For stream services, self.request is a socket object; for
datagram services, self.request is a pair of string and socket."

How much of a datagram that string holds is not documented: test_udp.py checks it.
"""

from __future__ import annotations

import socket

from hypothesis import example, given

from conformance import bounds
from conformance.clients import datagram, stream
from conformance.contracts._messages import difference, excerpt
from conformance.contracts.catalog import DATAGRAM_SERVERS, DOCS, STREAM_SERVERS, contract
from conformance.harness import ServedServer
from conformance.strategies import ClientPlan, WritePattern, datagrams, payloads

HANDLE_DOC = DOCS + "#socketserver.BaseRequestHandler.handle"


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
                                        timeout=bounds.echo_timeout(len(payload)),
                                        watch=server.watch())
        (handler,) = server.take_handlers(1, until="setup", timeout=bounds.HANDLER_REPORT)
        request = handler.request
        # "For stream services, self.request is a socket object"
        assert request.is_socket, f"self.request is a {request.type}, not a socket.socket"
        assert request.so_type == socket.SOCK_STREAM, (
            f"self.request has socket type {request.so_type}, not SOCK_STREAM")
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
        reply = datagram.exchange(server.address, sent, timeout=bounds.DATAGRAM_REPLY,
                                  watch=server.watch())
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, (
            f"no handler ran within {bounds.HANDLER_REPORT:g}s for a {len(sent)}-byte datagram")
        request = handlers[0].request
        # "for datagram services, self.request is a pair of string and socket"
        assert request.is_tuple and request.length == 2, (
            f"self.request is a {request.type} of length {request.length}, not a 2-tuple")
        assert handlers[0].datagram == sent, (
            f"self.request[0] is {excerpt(handlers[0].datagram or b'')}, "
            f"not the datagram sent, {excerpt(sent)}")
        sock = request.socket
        assert sock is not None and sock.is_socket and sock.so_type == socket.SOCK_DGRAM, (
            f"self.request[1] is a {sock.type if sock else None}, not a datagram "
            "socket.socket")
        assert handlers[0].setup.request_socket_is_server_socket, (
            "self.request[1] is not the server's own socket (self.server.socket)")
        echoed_right = reply.reply == sent.upper()
        assert echoed_right, (
            "no reply reached the client" if reply.reply is None
            else difference(reply.reply, sent.upper()))

    check()
