"""The documentation's uppercase echo, as a property over payloads and write patterns.

Documentation, "socketserver.TCPServer Example": the handler reads with
``self.request.recv(1024)`` and replies with ``self.request.sendall(self.data.upper())``.
TCP and Unix stream sockets are streams: how the client splits its writes must not change
what it gets back.
"""

from __future__ import annotations

from hypothesis import example, given

from conformance import bounds
from conformance.clients import stream
from conformance.contracts._messages import difference
from conformance.contracts.catalog import DOCS, STREAM_SERVERS, contract
from conformance.harness import ServedServer
from conformance.strategies import PART_LATE, ClientPlan, WritePattern, concurrent_clients


@contract("echo.upper", servers=STREAM_SERVERS, reference=DOCS + "#socketserver-tcpserver-example",
          handler_side=True)
def test_echo_upper(server: ServedServer) -> None:
    """With the reference handler (loop recv(1024), sendall(data.upper())), every client
    receives exactly payload.upper(), whatever the payload, however it is split into
    writes, and however many clients send at once."""

    @example(plans=[ClientPlan(b"hello", WritePattern())])
    @example(plans=[ClientPlan(b"hello", PART_LATE)])
    @given(plans=concurrent_clients())
    def check(plans: list[ClientPlan]) -> None:
        total = sum(len(plan.payload) for plan in plans)
        timeout = bounds.echo_timeout(total)
        transcripts = stream.exchange(server.address, plans, timeout=timeout,
                                      watch=server.watch(len(plans)))
        for number, (plan, transcript) in enumerate(zip(plans, transcripts), 1):
            expected = plan.payload.upper()
            # A name, not the comparison: pytest would diff the two byte strings, for
            # minutes on long ones; difference() says where they part.
            echoed = transcript.received == expected
            assert echoed, (
                f"client {number} of {len(plans)}: "
                + difference(transcript.received, expected)
                + ("" if transcript.finished_at else f" (nothing more came {transcript.waited})"))

    check()
