"""What a failing handler does to the server: handle_error(), finish(), and the exceptions
that are not the server's to handle.

Documentation, BaseServer.handle_request(): "If the user-provided handle() method of the
handler class raises an exception, the server's handle_error() method will be called."
handle_error(): "This function is called if the handle() method of a RequestHandlerClass
instance raises an exception. The default action is to print the traceback to standard
error and continue handling further requests." and, changed in 3.6, "Now only called for
exceptions derived from the Exception class." finish(): "If setup() raises an exception,
this function will not be called."

Clients are sent one after the other, each once handle_error() was called for the previous
one. The handler raises an exception of the kit's own (HANDLER_EXCEPTION), so that
handle_error() is seen handling that one and not another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import waiting
from conformance.contracts._messages import calls_made
from conformance.contracts.catalog import ALL_SERVERS, DOCS, SYNCHRONOUS_SERVERS, contract
from conformance.harness import (
    HANDLER_EXCEPTION,
    Handler,
    HandlerSpec,
    ServedServer,
    ServerCall,
)
from conformance.strategies import KIB, payloads

HANDLE_ERROR_DOC = DOCS + "#socketserver.BaseServer.handle_error"
FINISH_DOC = DOCS + "#socketserver.BaseRequestHandler.finish"


def _failing_requests(server: ServedServer, payload: bytes, clients: int,
                      ) -> Iterator[tuple[int, Handler | None, ServerCall | None]]:
    """Send ``clients`` requests one after the other to a server whose handler raises; for
    each, once handle_error() was called for it (or HANDLER_REPORT passed), yield its number,
    its handler instance and the handle_error() call."""
    for number in range(1, clients + 1):
        since = len(server.calls())
        with waiting(server.address, payload, is_datagram=server.is_datagram,
                     half_close=False):
            calls = server.wait_for_calls("handle_error", 1, since=since,
                                          timeout=bounds.HANDLER_REPORT)
        errors = [c for c in calls if c.method == "handle_error"]
        # handle_error() runs after the handler's own events: they are all in by now.
        handlers = server.take_handlers(1, until="setup", timeout=bounds.HANDLER_REPORT)
        yield number, (handlers[0] if handlers else None), (errors[0] if errors else None)


def _check_handle_error(number: int, clients: int, handler: Handler | None,
                        error: ServerCall | None, place: str) -> Handler:
    """The checks a raising setup() and a raising handle() share; returns the handler."""
    assert handler is not None, (
        f"client {number} of {clients}: no handler instance ran within "
        f"{bounds.HANDLER_REPORT:g}s" + (f", after {number - 1} handler(s) raised in "
                                         f"{place}()" if number > 1 else ""))
    # "This function is called if the handle() method of a RequestHandlerClass instance
    # raises an exception."
    assert error is not None, (
        f"client {number} of {clients}: {place}() raised {HANDLER_EXCEPTION}, but "
        f"handle_error() was not called within {bounds.HANDLER_REPORT:g}s")
    assert error.error_type == HANDLER_EXCEPTION, (
        f"client {number} of {clients}: handle_error() was called while handling "
        f"{error.error_type}, not the {HANDLER_EXCEPTION} that {place}() raised")
    assert error.client_address == handler.client_address, (
        f"client {number} of {clients}: handle_error() got client_address "
        f"{error.client_address!r}, not the request's {handler.client_address!r}")
    return handler


@contract("errors.handle_raises", servers=ALL_SERVERS, reference=HANDLE_ERROR_DOC)
def test_errors_handle_raises(serve: Callable[..., ServedServer], server_class: str) -> None:
    """When handle() raises an Exception, finish() still runs, the server calls
    handle_error(request, client_address) with the request's client_address, and it goes
    on serving the next client."""
    server = serve(HandlerSpec.reference(server_class, raises_in="handle"))

    @example(payload=b"hello", clients=2)
    @given(payload=payloads(max_size=4 * KIB), clients=st.integers(2, 4))
    def check(payload: bytes, clients: int) -> None:
        for number, handler, error in _failing_requests(server, payload, clients):
            # "The default action is to print the traceback to standard error and continue
            # handling further requests."
            handler = _check_handle_error(number, clients, handler, error, "handle")
            # finish(): "If setup() raises an exception, this function will not be
            # called" -- a raising handle() does not skip it.
            assert handler.finished, (
                f"client {number} of {clients}: handle() raised and finish() did not run "
                f"(the handler went through {handler.steps})")

    check()


@contract("errors.setup_raises", servers=ALL_SERVERS, reference=FINISH_DOC)
def test_errors_setup_raises(serve: Callable[..., ServedServer], server_class: str) -> None:
    """When setup() raises an Exception, finish() is not called, the server calls
    handle_error(request, client_address) with the request's client_address, and it goes
    on serving the next client."""
    server = serve(HandlerSpec.reference(server_class, raises_in="setup"))

    @example(payload=b"hello", clients=2)
    @given(payload=payloads(max_size=4 * KIB), clients=st.integers(2, 4))
    def check(payload: bytes, clients: int) -> None:
        for number, handler, error in _failing_requests(server, payload, clients):
            handler = _check_handle_error(number, clients, handler, error, "setup")
            # "If setup() raises an exception, this function will not be called."
            assert not handler.finished, (
                f"client {number} of {clients}: setup() raised, yet finish() was called "
                f"(the handler went through {handler.steps})")

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
    servers = {(exception, place): serve(HandlerSpec.reference(server_class, raises_in=place,
                                                               raises=exception),
                                         serve=False)
               for exception in BASE_EXCEPTIONS for place in PLACES}

    @example(exception="KeyboardInterrupt", place="handle", payload=b"hello")
    @given(exception=st.sampled_from(BASE_EXCEPTIONS), place=st.sampled_from(PLACES),
           payload=payloads(max_size=4 * KIB))
    def check(exception: str, place: str, payload: bytes) -> None:
        server = servers[exception, place]
        since = len(server.calls())
        with waiting(server.address, payload, is_datagram=server.is_datagram,
                     half_close=False):
            outcome = server.call("handle_request", timeout=bounds.HANDLER_REPORT)
        calls = server.calls()[since:]
        # handle_error(): "Now only called for exceptions derived from the Exception class."
        assert not any(c.method == "handle_error" for c in calls), (
            f"{place}() raised {exception} and the server called {calls_made(calls)}: "
            "handle_error() is only for Exception subclasses")
        assert outcome.raised and outcome.exception == exception, (
            f"{place}() raised {exception}, but handle_request() "
            + ("returned normally" if outcome.returned
               else f"did not return within {bounds.HANDLER_REPORT:g}s" if outcome.hung
               else f"raised {outcome.exception}")
            + f"; the {exception} must propagate out of it")

    check()
