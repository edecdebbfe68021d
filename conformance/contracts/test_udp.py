"""What a datagram server reads: each datagram whole, up to max_packet_size bytes.

Documentation, BaseRequestHandler.handle(): "for datagram services, self.request is a pair
of string and socket". How much of a datagram that string holds is not documented:
Lib/socketserver.py reads it with recvfrom(max_packet_size), which udp.max_packet_size
checks at should level, on UDP and Unix datagram servers alike.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import datagram
from conformance.contracts._messages import difference
from conformance.contracts.catalog import DATAGRAM_SERVERS, SHOULD, SOURCE, contract
from conformance.harness import ServedServer

# The largest datagram the kit sends: within what UDP over IPv4 can carry.
MAX_DATAGRAM = 65000


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
    limit = server.attribute("max_packet_size")
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
        reply = datagram.exchange(server.address, sent, timeout=bounds.DATAGRAM_REPLY,
                                  watch=server.watch())
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, (
            f"no handler ran within {bounds.HANDLER_REPORT:g}s for a {size}-byte datagram")
        received = handlers[0].datagram or b""
        # UDPServer.get_request(): "self.socket.recvfrom(self.max_packet_size)"
        assert received == expected, (
            f"a {size}-byte datagram reached the handler as {len(received)} bytes, not "
            f"{len(expected)} (max_packet_size = {limit}): " + difference(received, expected))
        echoed_right = reply.reply == expected.upper()
        assert echoed_right, (
            "no reply reached the client" if reply.reply is None
            else difference(reply.reply, expected.upper()))

    check()
