"""Threading and forking servers serve clients independently of each other.

Documentation, "Asynchronous Mixins": "To build asynchronous handlers, use the
ThreadingMixIn and ForkingMixIn classes." and "Server Creation Notes": the synchronous
servers handle one request at a time, "which is inappropriate if each request takes a long
time to complete ... The solution is to create a separate process or thread to handle each
request". On a forking server that separate process is a child: "the modifications in the
child process would never reach the initial state kept in the parent process and passed to
each child."
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import datagram, round_trip, stream
from conformance.contracts._messages import difference, excerpt
from conformance.contracts.catalog import CONCURRENT_SERVERS, DOCS, FORKING_SERVERS, contract
from conformance.harness import (
    MARK_ATTRIBUTE,
    DatagramEcho,
    Handler,
    HandlerSpec,
    ServedServer,
    is_datagram_class,
)
from conformance.profiles import for_slow_scenarios
from conformance.strategies import (
    KIB,
    ClientPlan,
    WritePattern,
    ascii_payloads,
    concurrent_clients,
    payloads,
)

# Others connect while one client stalls: keep the burst within the listen backlog of 5.
MAX_OTHERS = 3
# The handler sleeps over datagrams that start with this, and only over those.
SLOW_PREFIX = b"SLOW "
FAST_PREFIX = b"fast "


@contract("concurrency.stalled_client", servers=CONCURRENT_SERVERS,
          reference=DOCS + "#asynchronous-mixins")
def test_concurrency_stalled_client(serve: Callable[..., ServedServer],
                                    server_class: str) -> None:
    """On threading and forking servers, a client that stalls mid-conversation, or a
    handler that spends a second or more over one datagram, does not hold up the others;
    the stalled client still receives its full echo when it resumes after a second or more
    of silence, and the slow datagram still gets its reply."""
    if is_datagram_class(server_class):
        _check_slow_datagram_handler(serve(DatagramEcho(sleep=bounds.STALL,
                                                        sleep_prefix=SLOW_PREFIX)))
    else:
        _check_stalled_stream_client(serve())


def _check_stalled_stream_client(server: ServedServer) -> None:
    # The stalled client stays silent at least until every other client has been served;
    # the explicit example keeps it silent for a second or more.
    @for_slow_scenarios()
    @example(head=b"stalled", tail=b"resumed",
             others=[ClientPlan(b"other", WritePattern())], long_silence=True)
    @given(head=ascii_payloads(min_size=1), tail=ascii_payloads(),
           others=concurrent_clients(max_clients=MAX_OTHERS,
                                     contents=ascii_payloads(max_size=64 * KIB)),
           long_silence=st.just(False))
    def check(head: bytes, tail: bytes, others: list[ClientPlan], long_silence: bool) -> None:
        watch = server.watch()
        with stream.connect(server.address, timeout=bounds.EOF) as stalled:
            stalled.sendall(head)
            echoed = stream.recv_exactly(stalled, len(head), timeout=bounds.HANDLER_REPORT,
                                         watch=watch)
            echoed_right = echoed == head.upper()
            assert echoed_right, (
                "before stalling, the client's first write was not echoed: "
                + difference(echoed, head.upper()))
            silent_since = time.monotonic()
            # "a separate process or thread to handle each request"
            transcripts = stream.exchange(server.address, others,
                                          timeout=bounds.OTHERS_SERVED,
                                          watch=server.watch(len(others)))
            for number, (plan, transcript) in enumerate(zip(others, transcripts), 1):
                echoed_right = transcript.received == plan.payload.upper()
                assert echoed_right, (
                    f"while one client stalled, other client {number} of {len(others)} was "
                    f"not served ({transcript.describe()}): "
                    + difference(transcript.received, plan.payload.upper()))
            if long_silence:
                time.sleep(max(0.0, silent_since + bounds.STALL - time.monotonic()))
            silence = time.monotonic() - silent_since
            stalled.sendall(tail)
            stalled.shutdown(socket.SHUT_WR)
            rest = stream.recv_exactly(stalled, len(tail), timeout=bounds.echo_timeout(
                len(tail)))
            echoed_right = rest == tail.upper()
            assert echoed_right, (
                f"after {silence:.2f}s of silence, the stalled client's echo was cut: "
                + difference(rest, tail.upper()))

    check()


def _check_slow_datagram_handler(server: ServedServer) -> None:
    @for_slow_scenarios()
    @example(slow=b"slow", others=[b"other"], slow_at=0)
    @given(slow=ascii_payloads(max_size=512),
           others=st.lists(ascii_payloads(max_size=512), min_size=1, max_size=MAX_OTHERS),
           slow_at=st.integers(0, MAX_OTHERS))
    def check(slow: bytes, others: list[bytes], slow_at: int) -> None:
        # One datagram makes its handler sleep; Hypothesis picks how many others are sent
        # and how many of them go before it.
        sent = [FAST_PREFIX + other for other in others]
        slow_at = min(slow_at, len(sent))
        sent.insert(slow_at, SLOW_PREFIX + slow)
        replies = datagram.exchange_all(server.address, sent,
                                        timeout=bounds.STALL + bounds.DATAGRAM_REPLY,
                                        watch=server.watch(len(sent)))
        handlers = server.take_handlers(len(sent), until="finish",
                                        timeout=bounds.HANDLER_REPORT)
        assert len(handlers) == len(sent) and all(h.finished for h in handlers), (
            f"of {len(sent)} datagrams, {sum(h.finished for h in handlers)} were "
            f"handled within {bounds.STALL + bounds.HANDLER_REPORT:g}s")
        slow_handler = next((h for h in handlers if _starts(h, SLOW_PREFIX)), None)
        assert slow_handler is not None, "no handler received the slow datagram"
        slow_returned = slow_handler.handle_return.time
        # "a separate process or thread to handle each request"
        held_up = [h for h in handlers
                   if h is not slow_handler and h.handle_return.time > slow_returned]
        assert not held_up, (
            f"while the handler of datagram {slow_at + 1} of {len(sent)} slept "
            f"{bounds.STALL:g}s, {len(held_up)} other datagram(s) were handled only after "
            f"it returned, e.g. {excerpt(held_up[0].datagram or b'')} in "
            f"{held_up[0].ran_in}: the server handled one datagram at a time")
        for number, (data, reply) in enumerate(zip(sent, replies), 1):
            echoed_right = reply.reply == data.upper()
            assert echoed_right, (
                f"datagram {number} of {len(sent)} got no reply {reply.waited}"
                if reply.reply is None
                else f"datagram {number} of {len(sent)}: "
                + difference(reply.reply, data.upper()))

    check()


def _starts(handler: Handler, prefix: bytes) -> bool:
    return (handler.datagram or b"").startswith(prefix)


@contract("concurrency.fork_isolation", servers=FORKING_SERVERS,
          reference=DOCS + "#server-creation-notes")
def test_concurrency_fork_isolation(serve: Callable[..., ServedServer],
                                    server_class: str) -> None:
    """On forking servers, each request handed off by process_request() is handled in a
    child process: an attribute its handler sets on self.server never appears on the
    server in the parent process.

    A server that does not hand requests off at all, and handles them in its own loop, is
    concurrency.stalled_client's failure, not this contract's: its handler's changes are
    the parent's own."""
    server = serve(HandlerSpec.reference(server_class, marks_server=True))

    @example(payload=b"hello")
    @given(payload=payloads(max_size=1024))
    def check(payload: bytes) -> None:
        round_trip(server.address, payload, is_datagram=server.is_datagram,
                   watch=server.watch())
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
        handler = handlers[0]
        if _not_handed_off(server, handler):
            return
        mark = server.marked_by()
        parent = server.harness.facts.pid
        # "the modifications in the child process would never reach the initial state kept
        # in the parent process"
        assert mark is None, (
            f"the handler ran in {handler.ran_in} and set self.server.{MARK_ATTRIBUTE}; "
            f"the server in the parent process (pid {parent}) now has it too: the request "
            "was not handled in a child process")

    check()


def _not_handed_off(server: ServedServer, handler: Handler) -> bool:
    """Whether the handler ran in the very thread of the very process that called
    process_request(): the server's own loop, which handed nothing off."""
    setup = handler.setup
    return any(call.method == "process_request" and call.pid == setup.pid
               and call.thread == setup.thread for call in server.calls())
