"""How a server handles one request: the hooks it calls, in order, the handler instance it
creates, the requests it refuses, and what a failing handler does to it.

Documentation, BaseServer.handle_request(): "This function calls the following methods in
order: get_request(), verify_request(), and process_request(). If the user-provided handle()
method of the handler class raises an exception, the server's handle_error() method will be
called." process_request(): "Calls finish_request() to create an instance of the
RequestHandlerClass." BaseRequestHandler: "A new instance of the subclass is created for
each request."

Requests are sent one after the other, each once the previous one is done, so that the
calls of one request are not interleaved with the next one's. On forking servers
get_request, verify_request and process_request run in the server's process and the rest in
the child; every reported call carries its pid, and messages show it.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import datagram, staying_open, stream
from conformance.contracts.catalog import ALL_SERVERS, DOCS, SHOULD, contract
from conformance.harness import ServedServer
from conformance.harness.observations import Handler
from conformance.harness.process import is_datagram_class
from conformance.profiles import for_slow_scenarios
from conformance.strategies import KIB, datagrams, payloads

HANDLE_REQUEST_DOC = DOCS + "#socketserver.BaseServer.handle_request"
HANDLER_DOC = DOCS + "#socketserver.BaseRequestHandler"
VERIFY_DOC = DOCS + "#socketserver.BaseServer.verify_request"
HANDLE_ERROR_DOC = DOCS + "#socketserver.BaseServer.handle_error"
FINISH_DOC = DOCS + "#socketserver.BaseRequestHandler.finish"
SOURCE = "https://github.com/python/cpython/blob/main/Lib/socketserver.py"

# handle_request() and process_request() documentation, in order.
DOCUMENTED_ORDER = ["get_request", "verify_request", "process_request", "finish_request"]
LIFECYCLE = ["setup", "handle", "handle-returned", "finish"]
SYNCHRONOUS_SERVERS = ("TCPServer", "UDPServer", "UnixStreamServer", "UnixDatagramServer")
# What the agent's handler raises when asked for an Exception.
HANDLER_ERROR = "HandlerRaised"


def _reference_kind(server_class: str) -> str:
    return "udp-echo" if is_datagram_class(server_class) else "echo"


def _describe(calls: list[dict[str, Any]]) -> str:
    """Calls as "get_request, ..., finish_request (pid 123)": the pid where it changes."""
    words, last_pid = [], None
    for call in calls:
        pid = call["pid"]
        words.append(call["method"] + (f" (pid {pid})" if last_pid not in (None, pid) else ""))
        last_pid = pid
    return ", ".join(words) or "nothing"


def _served_in_turn(server: ServedServer,
                    requests: list[bytes]) -> Iterator[tuple[bytes, Handler]]:
    """Serve one round trip per request payload, each after the previous handler's
    finish(); yield each payload with the handler instance that served it."""
    for payload in requests:
        with staying_open(server.address, payload, is_datagram=server.is_datagram):
            handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers and handlers[0].has("finish"), (
            f"no handler instance reached finish() within {bounds.HANDLER_REPORT:g}s of a "
            f"{len(payload)}-byte request"
            + (f" (it went through {handlers[0].kinds})" if handlers else ""))
        yield payload, handlers[0]


def _event_positions(server: ServedServer) -> dict[int, int]:
    return {id(event): position for position, event in enumerate(server.events)}


@contextlib.contextmanager
def _client_sending(server: ServedServer, payload: bytes, *,
                    half_close: bool = False) -> Iterator[Callable[[], bytes | None]]:
    """A client that has sent ``payload`` (a datagram, or one write on a new connection,
    then with ``half_close`` a half-close) and stays open inside the block. It yields a
    function that says what the client then receives within REFUSED_SILENCE: None for
    nothing (an EOF or a reset, on a stream)."""
    if server.is_datagram:
        with datagram.client_socket(server.address) as sock:
            sock.sendto(payload, server.address)

            def received() -> bytes | None:
                sock.settimeout(bounds.REFUSED_SILENCE)
                try:
                    return sock.recvfrom(1 << 16)[0]
                except OSError:
                    return None

            yield received
        return
    with contextlib.closing(stream.connect(server.address)) as sock:
        # The server may close the connection before all of it is sent.
        with contextlib.suppress(OSError):
            sock.sendall(payload)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        yield lambda: stream.recv_exactly(sock, max(1, len(payload)),
                                          timeout=bounds.REFUSED_SILENCE) or None


@contract("flow.call_order", servers=ALL_SERVERS, reference=HANDLE_REQUEST_DOC)
def test_flow_call_order(serve: Callable[..., ServedServer]) -> None:
    """For every request the server calls get_request(), verify_request(), process_request()
    and finish_request(), in that order, the last three with the client_address of the
    request, and the handler instance is created inside finish_request()."""
    server = serve()

    @example(requests=[b"hello", b"again"])
    @given(requests=st.lists(payloads(max_size=4 * KIB), min_size=1, max_size=3))
    def check(requests: list[bytes]) -> None:
        since = len(server.calls())
        served = list(_served_in_turn(server, requests))
        calls = [c for c in server.calls()[since:] if c["method"] in DOCUMENTED_ORDER]
        # "This function calls the following methods in order: get_request(),
        # verify_request(), and process_request()" and process_request() "Calls
        # finish_request() to create an instance of the RequestHandlerClass"
        assert [c["method"] for c in calls] == DOCUMENTED_ORDER * len(requests), (
            f"for {len(requests)} request(s), one after the other, the server called "
            f"{_describe(calls)}; each request must go through "
            f"{', '.join(DOCUMENTED_ORDER)}")
        positions = _event_positions(server)
        for number, (_, handler) in enumerate(served, 1):
            own = calls[(number - 1) * len(DOCUMENTED_ORDER):number * len(DOCUMENTED_ORDER)]
            for call in own[1:]:
                assert call["client_address"] == handler.setup["client_address"], (
                    f"request {number}: {call['method']}() got client_address "
                    f"{call['client_address']!r}, but the request's handler got "
                    f"{handler.setup['client_address']!r}")
            assert positions[id(handler.setup)] > positions[id(own[-1])], (
                f"request {number}: the handler instance was set up before "
                f"finish_request() was called ({_describe(own)})")

    check()


@contract("flow.handler_per_request", servers=ALL_SERVERS, reference=HANDLER_DOC)
def test_flow_handler_per_request(serve: Callable[..., ServedServer]) -> None:
    """Every request gets a new instance of the handler class, and each instance goes
    through setup(), handle() and finish() exactly once, in that order."""
    server = serve()

    @example(requests=[b"hello", b"again"])
    @given(requests=st.lists(payloads(max_size=4 * KIB), min_size=1, max_size=4))
    def check(requests: list[bytes]) -> None:
        handlers = [handler for _, handler in _served_in_turn(server, requests)]
        for number, handler in enumerate(handlers, 1):
            # "A new instance of the subclass is created for each request."
            assert handler.setup.get("previous_uid") is None, (
                f"request {number} was handled by the instance that had already handled "
                f"an earlier request (handler {handler.setup['previous_uid']}), not by a "
                "new one")
            # setup() is "Called before the handle() method", finish() "after the
            # handle() method"
            assert handler.kinds == LIFECYCLE, (
                f"request {number}: its handler instance went through {handler.kinds}, "
                f"not {LIFECYCLE}")
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
        with _client_sending(server, payload) as received:
            calls = server.wait_for_calls("verify_request", 1, since=since,
                                          timeout=bounds.HANDLER_REPORT)
            assert any(c["method"] == "verify_request" for c in calls), (
                f"verify_request() was not called within {bounds.HANDLER_REPORT:g}s of a "
                f"{len(payload)}-byte request")
            reply = received()
        calls = server.calls()[since:]
        processed = [c for c in calls if c["method"] in ("process_request", "finish_request")]
        # "if it's False, the request will be denied"
        assert not processed, (
            f"verify_request() returned False, yet the server called {_describe(calls)}")
        handlers = server.untaken()
        assert not handlers, (
            f"verify_request() returned False, yet {len(handlers)} handler instance(s) "
            f"ran ({handlers[0].kinds})")
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

    @example(requests=[b"hello"], refused=1)
    @given(requests=st.lists(payloads(max_size=4 * KIB), min_size=1, max_size=3),
           refused=st.integers(0, 2))
    def check(requests: list[bytes], refused: int) -> None:
        since = len(server.calls())
        finished = []
        for number, (_, handler) in enumerate(_served_in_turn(server, requests), 1):
            finished.append(handler.first("finish"))
            server.wait_for_calls("shutdown_request", number, since=since,
                                  timeout=bounds.HANDLER_REPORT)
        calls = server.calls()[since:]
        shutdowns = [c for c in calls if c["method"] == "shutdown_request"]
        assert len(shutdowns) == len(requests), (
            f"for {len(requests)} request(s), one after the other, the server called "
            f"{_describe(calls)}: shutdown_request() {len(shutdowns)} times")
        positions = _event_positions(server)
        for number, (finish, shutdown) in enumerate(zip(finished, shutdowns), 1):
            assert positions[id(shutdown)] > positions[id(finish)], (
                f"request {number}: shutdown_request() was called before its handler's "
                "finish()")
        for number in range(1, refused + 1):
            since = len(refusing.calls())
            # Half-closed: a server that wrongly processed it would still shut it down.
            with _client_sending(refusing, b"refused", half_close=True):
                calls = refusing.wait_for_calls("shutdown_request", 1, since=since,
                                                timeout=bounds.HANDLER_REPORT)
            shutdowns = [c for c in calls if c["method"] == "shutdown_request"]
            assert len(shutdowns) == 1, (
                f"denied request {number}: the server called {_describe(calls)}; "
                f"shutdown_request() {len(shutdowns)} times, not once")

    check()


def _failing_requests(server: ServedServer, payload: bytes, clients: int,
                      ) -> Iterator[tuple[int, Handler | None, dict[str, Any] | None]]:
    """Send ``clients`` requests one after the other to a server whose handler raises; for
    each, once handle_error() was called for it (or HANDLER_REPORT passed), yield its number,
    its handler instance and the handle_error() call."""
    for number in range(1, clients + 1):
        since = len(server.calls())
        with _client_sending(server, payload):
            calls = server.wait_for_calls("handle_error", 1, since=since,
                                          timeout=bounds.HANDLER_REPORT)
        errors = [c for c in calls if c["method"] == "handle_error"]
        # handle_error() runs after the handler's own events: they are all in by now.
        handlers = server.take_handlers(1, until="setup", timeout=bounds.HANDLER_REPORT)
        yield number, (handlers[0] if handlers else None), (errors[0] if errors else None)


def _check_handle_error(number: int, clients: int, handler: Handler | None,
                        error: dict[str, Any] | None, place: str) -> Handler:
    """The checks a raising setup() and a raising handle() share; returns the handler."""
    assert handler is not None, (
        f"client {number} of {clients}: no handler instance ran within "
        f"{bounds.HANDLER_REPORT:g}s" + (f", after {number - 1} handler(s) raised in "
                                         f"{place}()" if number > 1 else ""))
    # "This function is called if the handle() method of a RequestHandlerClass instance
    # raises an exception."
    assert error is not None, (
        f"client {number} of {clients}: {place}() raised {HANDLER_ERROR}, but handle_error() "
        f"was not called within {bounds.HANDLER_REPORT:g}s")
    assert error["error_type"] == HANDLER_ERROR, (
        f"client {number} of {clients}: handle_error() was called while handling "
        f"{error['error_type']}, not the {HANDLER_ERROR} that {place}() raised")
    assert error["client_address"] == handler.setup["client_address"], (
        f"client {number} of {clients}: handle_error() got client_address "
        f"{error['client_address']!r}, not the request's {handler.setup['client_address']!r}")
    return handler


@contract("errors.handle_raises", servers=ALL_SERVERS, reference=HANDLE_ERROR_DOC)
def test_errors_handle_raises(serve: Callable[..., ServedServer], server_class: str) -> None:
    """When handle() raises an Exception, finish() still runs, the server calls
    handle_error(request, client_address) with the request's client_address, and it goes
    on serving the next client."""
    server = serve({"kind": _reference_kind(server_class), "raise_in": "handle"})

    @example(payload=b"hello", clients=2)
    @given(payload=payloads(max_size=4 * KIB), clients=st.integers(2, 4))
    def check(payload: bytes, clients: int) -> None:
        for number, handler, error in _failing_requests(server, payload, clients):
            # "The default action is to print the traceback to standard error and continue
            # handling further requests."
            handler = _check_handle_error(number, clients, handler, error, "handle")
            # finish(): "If setup() raises an exception, this function will not be
            # called" -- a raising handle() does not skip it.
            assert handler.has("finish"), (
                f"client {number} of {clients}: handle() raised and finish() did not run "
                f"(the handler went through {handler.kinds})")

    check()


@contract("errors.setup_raises", servers=ALL_SERVERS, reference=FINISH_DOC)
def test_errors_setup_raises(serve: Callable[..., ServedServer], server_class: str) -> None:
    """When setup() raises an Exception, finish() is not called, the server calls
    handle_error(request, client_address) with the request's client_address, and it goes
    on serving the next client."""
    server = serve({"kind": _reference_kind(server_class), "raise_in": "setup"})

    @example(payload=b"hello", clients=2)
    @given(payload=payloads(max_size=4 * KIB), clients=st.integers(2, 4))
    def check(payload: bytes, clients: int) -> None:
        for number, handler, error in _failing_requests(server, payload, clients):
            handler = _check_handle_error(number, clients, handler, error, "setup")
            # "If setup() raises an exception, this function will not be called."
            assert not handler.has("finish"), (
                f"client {number} of {clients}: setup() raised, yet finish() was called "
                f"(the handler went through {handler.kinds})")

    check()


BASE_EXCEPTIONS = ["KeyboardInterrupt", "SystemExit"]
PLACES = ["handle", "setup"]


@contract("errors.base_exceptions_propagate", servers=SYNCHRONOUS_SERVERS,
          reference=HANDLE_ERROR_DOC, since=(3, 6))
def test_errors_base_exceptions_propagate(serve: Callable[..., ServedServer],
                                          server_class: str) -> None:
    """On the synchronous servers, a KeyboardInterrupt or SystemExit raised in a handler's
    setup() or handle() does not reach handle_error(): it propagates out of
    handle_request().

    Checked on the synchronous servers only: a threading server runs the handler in a thread
    of its own, where the exception ends that thread, and a forking server in a child, which
    exits; neither has a handle_request() call for it to leave. Before 3.6, handle_error()
    was called for every exception."""
    kind = _reference_kind(server_class)
    servers = {(exception, place): serve({"kind": kind, "raise_in": place, "raise": exception},
                                         serve=False)
               for exception in BASE_EXCEPTIONS for place in PLACES}

    @example(exception="KeyboardInterrupt", place="handle", payload=b"hello")
    @given(exception=st.sampled_from(BASE_EXCEPTIONS), place=st.sampled_from(PLACES),
           payload=payloads(max_size=4 * KIB))
    def check(exception: str, place: str, payload: bytes) -> None:
        server = servers[exception, place]
        since = len(server.calls())
        with _client_sending(server, payload):
            outcome = server.call("handle_request", timeout=bounds.HANDLER_REPORT)
        calls = server.calls()[since:]
        # handle_error(): "Now only called for exceptions derived from the Exception class."
        assert not any(c["method"] == "handle_error" for c in calls), (
            f"{place}() raised {exception} and the server called {_describe(calls)}: "
            "handle_error() is only for Exception subclasses")
        assert outcome["result"] == "raised" and outcome.get("exception") == exception, (
            f"{place}() raised {exception}, but handle_request() "
            + {"ok": "returned normally",
               "hung": f"did not return within {bounds.HANDLER_REPORT:g}s"}.get(
                outcome["result"], f"raised {outcome.get('exception')}")
            + f"; the {exception} must propagate out of it")

    check()
