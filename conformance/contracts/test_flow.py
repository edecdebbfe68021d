"""How a server handles one request: the hooks it calls, in order, the handler instance it
creates, and the requests it refuses.

Documentation, BaseServer.handle_request(): "This function calls the following methods in
order: get_request(), verify_request(), and process_request()." process_request(): "Calls
finish_request() to create an instance of the RequestHandlerClass." BaseRequestHandler: "A
new instance of the subclass is created for each request."

Requests are sent one after the other, each once the previous one is done, so that the
calls of one request are not interleaved with the next one's. On forking servers
get_request, verify_request and process_request run in the server's process and the rest in
the child; every reported call carries its pid, and messages show it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import staying_open, waiting
from conformance.contracts._messages import calls_made
from conformance.contracts.catalog import ALL_SERVERS, DOCS, SHOULD, SOURCE, contract
from conformance.harness import HANDLER_LIFECYCLE, Handler, ServedServer
from conformance.profiles import for_slow_scenarios
from conformance.strategies import (
    KIB,
    ONE_WRITE,
    PART_LATE,
    WritePattern,
    datagrams,
    payloads,
)

HANDLE_REQUEST_DOC = DOCS + "#socketserver.BaseServer.handle_request"
HANDLER_DOC = DOCS + "#socketserver.BaseRequestHandler"
VERIFY_DOC = DOCS + "#socketserver.BaseServer.verify_request"

# handle_request() and process_request() documentation, in order.
DOCUMENTED_ORDER = ["get_request", "verify_request", "process_request", "finish_request"]


def _served_in_turn(server: ServedServer, requests: list[bytes],
                    pattern: WritePattern) -> Iterator[tuple[bytes, Handler]]:
    """Serve one round trip per request payload (on a stream, written in ``pattern``), each
    after the previous handler's finish(); yield each payload with the handler instance
    that served it."""
    for payload in requests:
        with staying_open(server.address, payload, is_datagram=server.is_datagram,
                          watch=server.watch(), pattern=pattern):
            handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers and handlers[0].finished, (
            f"no handler instance reached finish() within {bounds.HANDLER_REPORT:g}s of a "
            f"{len(payload)}-byte request"
            + (f" (it went through {handlers[0].steps})" if handlers else ""))
        yield payload, handlers[0]


@contract("flow.call_order", servers=ALL_SERVERS, reference=HANDLE_REQUEST_DOC)
def test_flow_call_order(serve: Callable[..., ServedServer]) -> None:
    """For every request the server calls get_request(), verify_request(), process_request()
    and finish_request(), in that order, the last three with the client_address of the
    request, and the handler instance is created inside finish_request()."""
    server = serve()

    @example(requests=[b"hello", b"again"], pattern=ONE_WRITE)
    @example(requests=[b"hello"], pattern=PART_LATE)
    @given(requests=st.lists(payloads(max_size=4 * KIB), min_size=1, max_size=3),
           pattern=st.just(ONE_WRITE))
    def check(requests: list[bytes], pattern: WritePattern) -> None:
        since = len(server.calls())
        served = list(_served_in_turn(server, requests, pattern))
        calls = [c for c in server.calls()[since:] if c.method in DOCUMENTED_ORDER]
        # "This function calls the following methods in order: get_request(),
        # verify_request(), and process_request()" and process_request() "Calls
        # finish_request() to create an instance of the RequestHandlerClass"
        assert [c.method for c in calls] == DOCUMENTED_ORDER * len(requests), (
            f"for {len(requests)} request(s), one after the other, the server called "
            f"{calls_made(calls)}; each request must go through "
            f"{', '.join(DOCUMENTED_ORDER)}")
        for number, (_, handler) in enumerate(served, 1):
            own = calls[(number - 1) * len(DOCUMENTED_ORDER):number * len(DOCUMENTED_ORDER)]
            for call in own[1:]:
                assert call.client_address == handler.client_address, (
                    f"request {number}: {call.method}() got client_address "
                    f"{call.client_address!r}, but the request's handler got "
                    f"{handler.client_address!r}")
            assert handler.setup.position > own[-1].position, (
                f"request {number}: the handler instance was set up before "
                f"finish_request() was called ({calls_made(own)})")

    check()


@contract("flow.handler_per_request", servers=ALL_SERVERS, reference=HANDLER_DOC)
def test_flow_handler_per_request(serve: Callable[..., ServedServer]) -> None:
    """Every request gets a new instance of the handler class, and each instance goes
    through setup(), handle() and finish() exactly once, in that order."""
    server = serve()

    @example(requests=[b"hello", b"again"], pattern=ONE_WRITE)
    @example(requests=[b"hello"], pattern=PART_LATE)
    @given(requests=st.lists(payloads(max_size=4 * KIB), min_size=1, max_size=4),
           pattern=st.just(ONE_WRITE))
    def check(requests: list[bytes], pattern: WritePattern) -> None:
        handlers = [handler for _, handler in _served_in_turn(server, requests, pattern)]
        for number, handler in enumerate(handlers, 1):
            # "A new instance of the subclass is created for each request."
            assert handler.setup.reused_from is None, (
                f"request {number} was handled by the instance that had already handled "
                f"an earlier request (handler {handler.setup.reused_from}), not by a "
                "new one")
            # setup() is "Called before the handle() method", finish() "after the
            # handle() method"
            assert handler.steps == HANDLER_LIFECYCLE, (
                f"request {number}: its handler instance went through {handler.steps}, "
                f"not {HANDLER_LIFECYCLE}")
        extra = server.untaken()
        assert not extra, (
            f"{len(requests)} requests made {len(requests) + len(extra)} handler instances")

    check()


@contract("flow.verify_refused", servers=ALL_SERVERS, reference=VERIFY_DOC)
def test_flow_verify_refused(serve: Callable[..., ServedServer]) -> None:
    """When verify_request() returns False the request is denied: no handler instance is
    created, process_request() and finish_request() are not called, and the client
    receives nothing.

    The stdlib then closes the denied request through shutdown_request(), so a stream
    client reads EOF at once; that route is flow.shutdown_request's business, and a client
    that reads EOF, a reset or nothing at all has received nothing."""
    server = serve(verify=False)

    # What is refused hardly depends on the payload; each datagram example waits
    # REFUSED_SILENCE for the nothing that must come back.
    @for_slow_scenarios(divisor=4)
    @example(payload=b"hello")
    @given(payload=datagrams() if server.is_datagram else payloads(max_size=64 * KIB))
    def check(payload: bytes) -> None:
        since = len(server.calls())
        with waiting(server.address, payload, is_datagram=server.is_datagram,
                     half_close=False) as client:
            calls = server.wait_for_calls("verify_request", 1, since=since,
                                          timeout=bounds.HANDLER_REPORT)
            assert any(c.method == "verify_request" for c in calls), (
                f"verify_request() was not called within {bounds.HANDLER_REPORT:g}s of a "
                f"{len(payload)}-byte request")
            reply = client.receive(bounds.REFUSED_SILENCE)
        calls = server.calls()[since:]
        processed = [c for c in calls if c.method in ("process_request", "finish_request")]
        # "if it's False, the request will be denied"
        assert not processed, (
            f"verify_request() returned False, yet the server called {calls_made(calls)}")
        handlers = server.untaken()
        assert not handlers, (
            f"verify_request() returned False, yet {len(handlers)} handler instance(s) "
            f"ran ({handlers[0].steps})")
        assert reply is None, (
            "verify_request() returned False, yet the client received "
            + (f"{len(reply)} bytes" if reply else "an empty datagram"))

    check()


@contract("flow.shutdown_request", servers=ALL_SERVERS, reference=SOURCE, level=SHOULD)
def test_flow_shutdown_request(serve: Callable[..., ServedServer]) -> None:
    """shutdown_request(request) is called once for every request: after its handler's
    finish(), and for a request that verify_request() denied."""
    server = serve()
    refusing = serve(verify=False)

    @example(requests=[b"hello"], refused=1, pattern=ONE_WRITE)
    @example(requests=[b"hello"], refused=0, pattern=PART_LATE)
    @given(requests=st.lists(payloads(max_size=4 * KIB), min_size=1, max_size=3),
           refused=st.integers(0, 2), pattern=st.just(ONE_WRITE))
    def check(requests: list[bytes], refused: int, pattern: WritePattern) -> None:
        since = len(server.calls())
        finished = []
        for number, (_, handler) in enumerate(_served_in_turn(server, requests, pattern),
                                              1):
            finished.append(handler.finish)
            server.wait_for_calls("shutdown_request", number, since=since,
                                  timeout=bounds.HANDLER_REPORT)
        calls = server.calls()[since:]
        shutdowns = [c for c in calls if c.method == "shutdown_request"]
        assert len(shutdowns) == len(requests), (
            f"for {len(requests)} request(s), one after the other, the server called "
            f"{calls_made(calls)}: shutdown_request() {len(shutdowns)} times")
        for number, (finish, shutdown) in enumerate(zip(finished, shutdowns), 1):
            assert shutdown.position > finish.position, (
                f"request {number}: shutdown_request() was called before its handler's "
                "finish()")
        for number in range(1, refused + 1):
            since = len(refusing.calls())
            # Half-closed: a server that wrongly processed it would still shut it down.
            with waiting(refusing.address, b"refused", is_datagram=refusing.is_datagram):
                calls = refusing.wait_for_calls("shutdown_request", 1, since=since,
                                                timeout=bounds.HANDLER_REPORT)
            shutdowns = [c for c in calls if c.method == "shutdown_request"]
            assert len(shutdowns) == 1, (
                f"denied request {number}: the server called {calls_made(calls)}; "
                f"shutdown_request() {len(shutdowns)} times, not once")

    check()
