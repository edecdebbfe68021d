"""Threading and forking servers serve clients independently of each other.

Documentation, "Asynchronous Mixins": "To build asynchronous handlers, use the
ThreadingMixIn and ForkingMixIn classes." and "Server Creation Notes": the synchronous
servers handle one request at a time, "which is inappropriate if each request takes a long
time to complete ... The solution is to create a separate process or thread to handle each
request".
"""

from __future__ import annotations

import socket
import time

from hypothesis import example, given

from conformance import bounds
from conformance.clients import stream
from conformance.contracts._messages import difference
from conformance.contracts.catalog import CONCURRENT_TCP_SERVERS, DOCS, contract
from conformance.harness import ServedServer
from conformance.profiles import for_slow_scenarios
from conformance.strategies import (
    KIB,
    ClientPlan,
    WritePattern,
    ascii_payloads,
    concurrent_clients,
)

# Others connect while one client stalls: keep the burst within the listen backlog of 5.
MAX_OTHERS = 3


@contract("concurrency.stalled_client", servers=CONCURRENT_TCP_SERVERS,
          reference=DOCS + "#asynchronous-mixins")
def test_concurrency_stalled_client(server: ServedServer) -> None:
    """On threading and forking servers, a client that stalls mid-conversation does not hold
    up the others, and when it resumes after a second or more of silence it still receives
    its full echo."""

    @for_slow_scenarios()
    @example(head=b"stalled", tail=b"resumed",
             others=[ClientPlan(b"other", WritePattern())])
    @given(head=ascii_payloads(min_size=1), tail=ascii_payloads(),
           others=concurrent_clients(max_clients=MAX_OTHERS,
                                     contents=ascii_payloads(max_size=64 * KIB)))
    def check(head: bytes, tail: bytes, others: list[ClientPlan]) -> None:
        with socket.create_connection(server.address, timeout=bounds.EOF) as stalled:
            stalled.sendall(head)
            echoed = stream.recv_exactly(stalled, len(head), timeout=bounds.HANDLER_REPORT)
            assert echoed == head.upper(), (
                "before stalling, the client's first write was not echoed: "
                + difference(echoed, head.upper()))
            silent_since = time.monotonic()
            # "a separate process or thread to handle each request"
            transcripts = stream.exchange(server.address, others,
                                          timeout=bounds.OTHERS_SERVED)
            for number, (plan, transcript) in enumerate(zip(others, transcripts), 1):
                assert transcript.received == plan.payload.upper(), (
                    f"while one client stalled, other client {number} of {len(others)} was "
                    f"not served within {bounds.OTHERS_SERVED:g}s: "
                    + difference(transcript.received, plan.payload.upper()))
            time.sleep(max(0.0, silent_since + bounds.STALL - time.monotonic()))
            stalled.sendall(tail)
            stalled.shutdown(socket.SHUT_WR)
            rest = stream.recv_exactly(stalled, len(tail), timeout=bounds.echo_timeout(
                len(tail)))
            assert rest == tail.upper(), (
                f"after {bounds.STALL:g}s of silence, the stalled client's echo was cut: "
                + difference(rest, tail.upper()))

    check()
