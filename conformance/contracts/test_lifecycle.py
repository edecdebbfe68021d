"""How a server runs and stops: serve_forever() and shutdown(), handle_request() and its
timeout, server_close() and the with statement, binding, and allow_reuse_address.

Documentation, BaseServer: serve_forever(poll_interval=0.5): "Handle requests until an
explicit shutdown() request. Poll for shutdown every poll_interval seconds. Ignores the
timeout attribute. It also calls service_actions()"; service_actions(): "This is called in
the serve_forever() loop."; shutdown(): "Tell the serve_forever() loop to stop and wait
until it does. shutdown() must be called while serve_forever() is running in a different
thread otherwise it will deadlock."; handle_request(): "Process a single request. ... If no
request is received within timeout seconds, handle_timeout() will be called and
handle_request() will return." (and, in the stdlib's source, no later than a timeout set
on the server's socket with settimeout()); "Finally, call server_close() to close the
socket (unless you used a with statement)", and, new in 3.6, "Exiting the context manager
is equivalent to calling server_close()". TCPServer: "If bind_and_activate is true, the
constructor automatically attempts to invoke server_bind() and server_activate()".
allow_reuse_address: "Whether the server will allow the reuse of an address. This defaults
to False". request_queue_size: "any requests that arrive while the server is busy are
placed into a queue, up to request_queue_size requests".

The kit runs serve_forever() itself here (servers start with serve=False and the kit calls
serve_forever() in the background), so that it knows when the loop runs and how often it
polls. Scenarios that end a server (server_close(), the with statement, rebinding a closed
server's port) run once per server class: a server is started per test, never per example.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import all_waiting, datagram, round_trip, stream
from conformance.contracts.catalog import (
    ALL_SERVERS,
    DOCS,
    INET_SERVERS,
    SHOULD,
    SOURCE,
    STREAM_SERVERS,
    TCP_SERVERS,
    THREADING_INET_SERVERS,
    contract,
)
from conformance.harness import HandlerSpec, HarnessError, Idle, ServedServer, ServerCall
from conformance.profiles import for_slow_scenarios
from conformance.strategies import KIB, ascii_payloads

SERVE_FOREVER_DOC = DOCS + "#socketserver.BaseServer.serve_forever"
SHUTDOWN_DOC = DOCS + "#socketserver.BaseServer.shutdown"
# The poll_interval of the loops the kit runs where the interval is not the point.
POLL = 0.05
# The poll_intervals and timeouts tried where it is: short, so that an example stays short.
MIN_POLL = 0.01
MAX_POLL = 0.25
# serve_forever(poll_interval=0.5): the documented default.
DEFAULT_POLL = 0.5
# Requests waiting at once: within the listen backlog of 5.
MAX_WAITING = 3
# How long after calling shutdown() the late clients of no_request_after_shutdown wait
# before they send: long enough for shutdown() to have asked the loop to stop.
MIN_LATE_DELAY = 0.25
# The service_actions() calls of an idle loop over a window, against the window divided by
# poll_interval: a loaded machine's poll oversleeps, so fewer are fine, down to this share;
# up to this many times more, plus a couple, is rounding; more is a loop that does not wait.
RATE_LOW = 0.4
RATE_HIGH = 1.5
# An idle loop is watched over this many of its polls, for at least half of
# bounds.IDLE_LOOP and at most all of it.
IDLE_POLLS = 4
# The states of /proc/net/tcp, for failure messages.
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


def _serve_forever_call(poll_interval: float | None) -> str:
    return "serve_forever()" if poll_interval is None else f"serve_forever({poll_interval:.3f})"


def _serve_in_background(server: ServedServer, poll_interval: float | None) -> int:
    """Start serve_forever(poll_interval) in the harness (None: with no argument) and wait
    until its loop has gone round once (service_actions() was called): from then on it is
    polling. Returns the task to join."""
    before = server.state().service_actions_calls
    args = () if poll_interval is None else (poll_interval,)
    loop = server.call_in_background("serve_forever", *args)
    bound = (DEFAULT_POLL if poll_interval is None else poll_interval) + bounds.LOOP_SLACK
    deadline = time.monotonic() + bound
    while server.state().service_actions_calls == before:
        assert time.monotonic() < deadline, (
            f"{_serve_forever_call(poll_interval)} did not go round its loop (call "
            f"service_actions()) within {bound:.2f}s")
        time.sleep(0.01)
    return loop


def _stop(server: ServedServer, loop: int) -> None:
    """shutdown(), then wait for the serve_forever() task to return. Whether shutdown()
    itself returns in time is lifecycle.shutdown_bound's business, not the caller's."""
    shutdown = server.call_in_background("shutdown")
    bound = bounds.STOP + bounds.LOOP_SLACK
    # A working shutdown() has ended the loop within its poll_interval; past that, one that
    # raised will not end it, and waiting out the bound would only delay the verdict.
    first = DEFAULT_POLL + bounds.LOOP_SLACK
    ended = server.join(loop, timeout=first)
    if not ended.returned:
        called = server.join(shutdown, timeout=0.0)
        assert not called.raised, (
            f"stopping serve_forever(): shutdown() raised {called.error}, and serve_forever() "
            f"{ended.describe(first)} after it was called")
        ended = server.join(loop, timeout=bound - first)
    assert ended.returned, (
        f"stopping serve_forever(): it {ended.describe(bound)} after shutdown() was called")


def _calls_of(server: ServedServer, since: int, method: str) -> list[ServerCall]:
    """The calls of ``method`` reported since call number ``since``, once there is one or
    QUIET has passed."""
    deadline = time.monotonic() + bounds.QUIET
    while True:
        calls = [call for call in server.calls()[since:] if call.method == method]
        if calls or time.monotonic() >= deadline:
            return calls
        server.poll(0.05)


@contract("lifecycle.shutdown_bound", servers=TCP_SERVERS, reference=SHUTDOWN_DOC)
def test_lifecycle_shutdown_bound(serve: Callable[..., ServedServer], server_class: str) -> None:
    """shutdown(), called from another thread while serve_forever(poll_interval) runs,
    returns within about poll_interval, and by then serve_forever() has returned.

    The loop is idle, somewhere in its poll when shutdown() comes: it must notice at the
    end of that poll at the latest."""
    server = serve(serve=False)

    # Two numbers in a small range: a few examples cover it; each one waits a poll.
    @for_slow_scenarios(divisor=4)
    @example(poll_interval=0.2, phase=0.0)
    @given(poll_interval=st.floats(MIN_POLL, MAX_POLL), phase=st.floats(0.0, 1.0))
    def check(poll_interval: float, phase: float) -> None:
        loop = _serve_in_background(server, poll_interval)
        time.sleep(phase * poll_interval)
        bound = poll_interval + bounds.SHUTDOWN_SLACK
        stopped = server.call("shutdown", timeout=bound + bounds.LOOP_SLACK)
        # "Poll for shutdown every poll_interval seconds." / shutdown(): "Tell the
        # serve_forever() loop to stop and wait until it does."
        assert stopped.returned and stopped.elapsed <= bound, (
            f"with poll_interval = {poll_interval:.3f}, shutdown() "
            f"{stopped.describe(bound + bounds.LOOP_SLACK)}; it must return within "
            f"{bound:.2f}s (poll_interval plus {bounds.SHUTDOWN_SLACK:g}s)")
        ended = server.join(loop, timeout=bounds.LOOP_SLACK)
        assert ended.returned, (
            f"shutdown() returned, but serve_forever() "
            f"{ended.describe(bounds.LOOP_SLACK)} after that")

    check()


def _serve_pending(server: ServedServer, count: int) -> None:
    """Serve ``count`` pending requests with a serve_forever() of their own, so that the
    next example starts with none."""
    loop = server.call_in_background("serve_forever", POLL)
    server.take_handlers(count, until="finish", timeout=bounds.HANDLER_REPORT)
    _stop(server, loop)


@contract("lifecycle.no_request_after_shutdown", servers=INET_SERVERS,
          reference=SERVE_FOREVER_DOC)
def test_lifecycle_no_request_after_shutdown(serve: Callable[..., ServedServer],
                                             server_class: str) -> None:
    """Once shutdown() has been called, serve_forever() handles no further request, not
    even one that arrives while its poll is still waiting (bpo-35017).

    serve_forever() polls with a long poll_interval; after it has served one request,
    shutdown() is called, and only then do more clients send theirs, while the loop still
    waits in its poll. Those requests stay pending; another serve_forever() serves them
    before the next example."""
    server = serve(serve=False)

    @for_slow_scenarios()
    @example(first=b"first", late=[b"late"], delay=MIN_LATE_DELAY)
    @given(first=ascii_payloads(min_size=1, max_size=KIB),
           late=st.lists(ascii_payloads(max_size=KIB), min_size=1, max_size=MAX_WAITING),
           delay=st.floats(MIN_LATE_DELAY, 3 * MIN_LATE_DELAY))
    def check(first: bytes, late: list[bytes], delay: float) -> None:
        loop = server.call_in_background("serve_forever", bounds.LATE_CLIENT_POLL)
        round_trip(server.address, first, is_datagram=server.is_datagram,
                   watch=server.watch())
        assert server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT), (
            f"serve_forever() served no request within {bounds.HANDLER_REPORT:g}s")
        since = len(server.calls())
        stopping = server.call_in_background("shutdown")
        time.sleep(delay)
        with all_waiting(server.address, late, is_datagram=server.is_datagram):
            bound = bounds.LATE_CLIENT_POLL + bounds.LOOP_SLACK
            stopped = server.join(stopping, timeout=bound)
            assert stopped.returned, f"shutdown() {stopped.describe(bound)}"
            ended = server.join(loop, timeout=bounds.LOOP_SLACK)
            assert ended.returned, (
                f"shutdown() returned, but serve_forever() "
                f"{ended.describe(bounds.LOOP_SLACK)} after that")
            time.sleep(bounds.QUIET)
            handled = [call.method for call in server.calls()[since:]
                       if call.method in ("get_request", "process_request")]
            started = server.untaken()
            # "Handle requests until an explicit shutdown() request."
            assert not handled and not started, (
                f"{len(late)} request(s) arrived {delay:.2f}s after shutdown() was called, "
                f"while serve_forever() still polled, and it went on to call "
                f"{', '.join(handled) or 'no server method'} and ran {len(started)} "
                "handler(s) for them")
            _serve_pending(server, len(late))

    check()


@contract("lifecycle.shutdown_in_handler", servers=THREADING_INET_SERVERS,
          reference=SHUTDOWN_DOC)
def test_lifecycle_shutdown_in_handler(serve: Callable[..., ServedServer],
                                       server_class: str) -> None:
    """On a threading server, a handler may call shutdown(): it runs in a thread of its
    own, so serve_forever() stops and the handler's shutdown() call returns.

    The handler calls shutdown() on the server the kit started, not through self.server
    (handler.server checks that one), then answers its request as the reference handler
    does."""
    server = serve(HandlerSpec.reference(server_class, shuts_down_server=True), serve=False)

    @example(payload=b"hello", poll_interval=POLL)
    @given(payload=ascii_payloads(max_size=KIB), poll_interval=st.floats(MIN_POLL, MAX_POLL))
    def check(payload: bytes, poll_interval: float) -> None:
        loop = server.call_in_background("serve_forever", poll_interval)
        with all_waiting(server.address, [payload], is_datagram=server.is_datagram):
            handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
            assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
            handler = handlers[0]
            # "shutdown() must be called while serve_forever() is running in a different
            # thread otherwise it will deadlock."
            assert handler.shutdown_returned, (
                f"the handler ({handler.ran_in}) called shutdown(), which "
                + (f"raised {handler.handle_error.error}"
                   if handler.handle_raised
                   else f"had not returned {bounds.HANDLER_REPORT:g}s later"))
            ended = server.join(loop, timeout=bounds.LOOP_SLACK)
            assert ended.returned, (
                f"the handler's shutdown() returned, but serve_forever() "
                f"{ended.describe(bounds.LOOP_SLACK)} after that")

    check()


def _still_served(where: Any, is_datagram: bool) -> str | None:
    """What shows that ``where`` is still served, or None when it is free."""
    if not is_datagram:
        try:
            with stream.connect(where):
                return f"a client could still connect to {where!r}"
        except (ConnectionRefusedError, FileNotFoundError):
            return None
        except OSError as exc:
            return f"connecting to {where!r} failed with {exc!r}, not with a refusal"
    if isinstance(where, str):
        with datagram.client_socket(where) as sock:
            try:
                sock.sendto(b"closed?", where)
            except (ConnectionRefusedError, FileNotFoundError):
                return None
            return f"a datagram sent to {where!r} was accepted"
    family = socket.AF_INET6 if ":" in where[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(tuple(where))
        except OSError as exc:
            return f"its port could not be bound again ({exc})"
    return None


@contract("lifecycle.server_close", servers=ALL_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.server_close")
def test_lifecycle_server_close(serve: Callable[..., ServedServer], server_class: str) -> None:
    """server_close() closes the server's socket: its fileno() is -1 afterwards, and its
    address is free again (a stream client is refused, so is a datagram sent to a Unix
    path, and a UDP port can be bound anew)."""
    server = serve(serve=False)
    opened = server.state()
    assert opened.socket_open, f"the new server's socket is not open: {opened.socket_error}"
    closed = server.call("server_close")
    assert closed.returned, f"server_close() {closed.describe(bounds.SERVER_CALL)}"
    after = server.state()
    # "Finally, call server_close() to close the socket"
    assert after.socket_fileno == -1, (
        f"after server_close(), the server's socket is still open, as file descriptor "
        f"{after.socket_fileno}")
    still = _still_served(server.address, server.is_datagram)
    assert still is None, f"after server_close(), {still}"


@contract("lifecycle.context_manager", servers=ALL_SERVERS,
          reference=DOCS + "#socketserver.BaseServer", since=(3, 6))
def test_lifecycle_context_manager(serve: Callable[..., ServedServer],
                                   server_class: str) -> None:
    """A server is a context manager: `with server as s` binds s to the server itself, and
    leaving the block calls server_close(), once, and nothing more: a serve_forever()
    running in another thread is not shut down, and stops only when shutdown() is called."""
    server = serve(serve=False)
    loop = _serve_in_background(server, POLL)
    since = len(server.calls())
    used = server.run_with_statement()
    assert used.returned, f"`with server: pass` {used.describe(bounds.SERVER_CALL)}"
    # The documentation's example: "with socketserver.TCPServer((HOST, PORT),
    # MyTCPHandler) as server:"
    assert used.value is True, "`with server as s`: s is not the server itself"
    closes = _calls_of(server, since, "server_close")
    # "Exiting the context manager is equivalent to calling server_close()."
    assert len(closes) == 1, (
        f"leaving the with block called server_close() {len(closes)} times, not once")
    running = server.join(loop, timeout=bounds.QUIET)
    assert running.hung, (
        f"leaving the with block ended the serve_forever() running in another thread (it "
        f"{running.describe(bounds.QUIET)}): it must only call server_close()")
    _stop(server, loop)


def _bound(sockname: Any) -> bool:
    """Whether a socket name is that of a bound socket: a port other than 0, or a path."""
    if isinstance(sockname, tuple):
        return sockname[1] != 0
    return bool(sockname)


@contract("lifecycle.bind_and_activate", servers=ALL_SERVERS,
          reference=DOCS + "#socketserver.TCPServer")
def test_lifecycle_bind_and_activate(serve: Callable[..., ServedServer],
                                     server_class: str) -> None:
    """Without bind_and_activate the constructor binds the socket and makes a stream socket
    listen (the default is True); with bind_and_activate=False it leaves the socket
    unbound; server_bind() binds it and sets server_address to the bound address (port 0
    becomes the port the system chose), server_activate() makes a stream socket listen,
    fileno() is the socket's file descriptor, and the server then serves at
    server_address."""
    by_default = serve(serve=False, bind_and_activate=None)
    made = by_default.state()
    # TCPServer(server_address, RequestHandlerClass, bind_and_activate=True)
    bound = _bound(made.sockname)
    activated = by_default.is_datagram or made.listening
    assert bound and activated, (
        "constructed without bind_and_activate (documented default: True), the server's "
        "socket is " + " and ".join(
            part for part, missing in (("unbound", not bound), ("not listening", not activated))
            if missing))
    server = serve(serve=False, bind_and_activate=False)
    created = server.state()
    unbound = created.sockname
    # "If bind_and_activate is true, the constructor automatically attempts to invoke
    # server_bind() and server_activate()" (and only then)
    assert not _bound(unbound) and not created.listening, (
        f"with bind_and_activate=False, the constructor left the socket bound to "
        f"{unbound!r}" + (", listening" if created.listening else ""))
    binding = server.call("server_bind")
    assert binding.returned, f"server_bind() {binding.describe(bounds.SERVER_CALL)}"
    after_bind = server.state()
    sockname = after_bind.sockname
    # server_bind(): "Called by the server's constructor to bind the socket to the desired
    # address."
    assert _bound(sockname), f"after server_bind(), the socket's address is {sockname!r}"
    # server_address: "The address on which the server is listening."
    assert after_bind.server_address == sockname, (
        f"after server_bind(), server_address is {after_bind.server_address!r}, but the "
        f"socket is bound to {sockname!r}")
    activation = server.call("server_activate")
    assert activation.returned, (
        f"server_activate() {activation.describe(bounds.SERVER_CALL)}")
    active = server.state()
    # "The default behavior for a TCP server just invokes listen() on the server's socket."
    assert server.is_datagram or active.listening, (
        "after server_activate(), the stream socket is not listening")
    fileno = server.call("fileno")
    # fileno(): "Return an integer file descriptor for the socket on which the server is
    # listening."
    assert fileno.returned and fileno.value == active.socket_fileno, (
        f"fileno() {fileno.describe(bounds.SERVER_CALL)} with {fileno.value!r}, but the "
        f"socket's file descriptor is {active.socket_fileno}")
    loop = _serve_in_background(server, POLL)
    round_trip(sockname, b"hello", is_datagram=server.is_datagram, watch=server.watch())
    assert server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT), (
        f"once bound and activated, the server served no request at {sockname!r} within "
        f"{bounds.HANDLER_REPORT:g}s")
    _stop(server, loop)


@contract("lifecycle.bind_failure_closes", servers=ALL_SERVERS, level=SHOULD, reference=SOURCE)
def test_lifecycle_bind_failure_closes(serve: Callable[..., ServedServer],
                                       server_class: str) -> None:
    """When binding fails in the constructor (the address is in use), the constructor
    calls server_close(), once, before it raises the error, so that the socket it created
    is not left open.

    The address is that of a server of the same class the kit started first, which holds
    it: a TCP or UDP port, or a Unix socket's path. That server_close() closes the socket
    is lifecycle.server_close's to check."""
    # The holder shares its address with nobody, whatever the class's default: that default
    # is lifecycle.reuse_address's to check.
    holder = serve(Idle(), serve=False, attrs={"allow_reuse_address": False})
    built = holder.construct_at_address()
    given_as = f"given the address {holder.address!r}, which another {server_class} holds"
    assert built.raised, f"{given_as}, the constructor returned: binding did not fail"
    # TCPServer.__init__: "except: self.server_close(); raise"
    assert built.server_close_calls == 1, (
        f"{given_as}, the constructor raised {built.error} after calling server_close() "
        f"{built.server_close_calls} times, not once"
        + ("; the socket it had created was left open" if built.socket_left_open else ""))


def _tcp_states(port: int) -> list[str]:
    """The states of this machine's IPv4 TCP sockets bound to ``port`` (Linux /proc; none
    elsewhere)."""
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            rows = table.read().splitlines()[1:]
    except OSError:
        return []
    return [TCP_STATES.get(fields[3], fields[3]) for fields in map(str.split, rows)
            if int(fields[1].rsplit(":", 1)[1], 16) == port]


@contract("lifecycle.reuse_address", servers=INET_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.allow_reuse_address")
def test_lifecycle_reuse_address(serve: Callable[..., ServedServer], server_class: str) -> None:
    """allow_reuse_address defaults to False, on TCP and UDP servers alike, and the server's
    socket then does not set SO_REUSEADDR; set to True, it lets a new TCP server bind the
    port of a closed one while a connection the closed server shut down is still in
    TIME_WAIT on that port.

    The closed server's handler returns at once, so the server closes the connection first
    and its end lingers in TIME_WAIT; on Linux, binding that port again then takes
    SO_REUSEADDR on both servers' sockets. A datagram server has no connection to leave
    in TIME_WAIT: on it, only the default and its socket option are checked."""
    first = serve(serve=False)
    default = first.attribute("allow_reuse_address")
    # "This defaults to False"
    assert default is False, f"allow_reuse_address is {default!r} by default, not False"
    # "Whether the server will allow the reuse of an address": with False, its socket does
    # not ask for it.
    assert not first.state().reuse_address, (
        "with allow_reuse_address = False, the server's socket has SO_REUSEADDR set")
    if first.is_datagram:
        return
    reuse = {"allow_reuse_address": True}
    closed = serve(Idle(), attrs=reuse)
    port = closed.address[1]
    with stream.connect(closed.address) as client:
        # The server's EOF, then the client's close: the server's end goes to TIME_WAIT.
        stream.recv_exactly(client, 1, timeout=bounds.EOF)
    stopped = closed.stop()
    assert stopped.closed, f"server_close() of the first server: {stopped.close}"
    lingering = ", ".join(_tcp_states(port)) or "none"
    refusal = None
    try:
        reopened = serve(attrs=reuse, port=port)
    except HarnessError as exc:
        refusal = str(exc).splitlines()[0]
    # "Whether the server will allow the reuse of an address."
    assert refusal is None, (
        f"with allow_reuse_address = True, a new {server_class} could not bind port {port} "
        f"of the closed one (sockets on that port: {lingering}): {refusal}")
    round_trip(reopened.address, b"hello", is_datagram=False, watch=reopened.watch())
    assert reopened.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT), (
        f"the new server on port {port} served no request within {bounds.HANDLER_REPORT:g}s")


@contract("lifecycle.reuse_port", servers=INET_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.allow_reuse_port", since=(3, 11))
def test_lifecycle_reuse_port(serve: Callable[..., ServedServer], server_class: str) -> None:
    """allow_reuse_port defaults to False; set to True, it lets a second server that also
    sets it bind the port of a first one that is still open (SO_REUSEPORT)."""
    default = serve(serve=False).attribute("allow_reuse_port")
    # "This defaults to False"
    assert default is False, f"allow_reuse_port is {default!r} by default, not False"
    reuse = {"allow_reuse_port": True}
    port = serve(serve=False, attrs=reuse).address[1]
    refusal = None
    try:
        serve(serve=False, attrs=reuse, port=port)
    except HarnessError as exc:
        refusal = str(exc).splitlines()[0]
    # "Whether the server will allow the reuse of a port."
    assert refusal is None, (
        f"with allow_reuse_port = True, a second {server_class} could not bind port {port}, "
        f"which a first one with allow_reuse_port = True has open: {refusal}")


# lifecycle.request_queue_size: the sizes checked besides the class's own, each set as a
# class attribute; Linux queues one connection more than a socket's listen() backlog.
QUEUE_SIZES = (1, 12)
SYSTEM_EXTRA = 1


@contract("lifecycle.request_queue_size", servers=STREAM_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.request_queue_size")
def test_lifecycle_request_queue_size(serve: Callable[..., ServedServer],
                                      server_class: str) -> None:
    """A stream server queues up to request_queue_size connections while it is busy: its
    socket listens with that backlog, so while it accepts none the system completes that
    many connections (Linux one more) and turns further ones away.

    Checked with the class's own request_queue_size and with others a subclass sets."""
    servers = [serve(serve=False)]
    servers += [serve(serve=False, attrs={"request_queue_size": size}) for size in QUEUE_SIZES]
    for server in servers:
        size = server.attribute("request_queue_size")
        assert isinstance(size, int) and size > 0, (
            f"the server's request_queue_size is {size!r}, not a positive number")
        expected = size + SYSTEM_EXTRA
        # One more than expected, to see the next one turned away.
        queued = stream.queued_connections(server.address, most=expected + 1)
        # "any requests that arrive while the server is busy are placed into a queue, up to
        # request_queue_size requests. Once the queue is full, further requests from
        # clients will get a "Connection denied" error."
        assert queued == expected, (
            f"with request_queue_size = {size} and nothing accepted, {queued} connections "
            f"completed, where the system completes {expected} for a listen() backlog of "
            f"{size}: the socket listens with a backlog of {queued - SYSTEM_EXTRA}"
            + (" or more" if queued > expected else ""))


@contract("lifecycle.handle_request", servers=INET_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.handle_request")
def test_lifecycle_handle_request(serve: Callable[..., ServedServer],
                                  server_class: str) -> None:
    """handle_request() processes a single request, however many are waiting: each call
    runs exactly one handler, and as many calls as there are requests serve them all."""
    server = serve(serve=False)

    # One to MAX_WAITING requests: a few examples cover it; each one watches QUIET.
    @for_slow_scenarios(divisor=4)
    @example(sent=[b"one", b"two"])
    @given(sent=st.lists(ascii_payloads(max_size=KIB), min_size=1, max_size=MAX_WAITING))
    def check(sent: list[bytes]) -> None:
        with all_waiting(server.address, sent, is_datagram=server.is_datagram):
            for number in range(1, len(sent) + 1):
                waiting = f"with {len(sent) - number + 1} request(s) waiting"
                outcome = server.call("handle_request", timeout=bounds.HANDLER_REPORT)
                assert outcome.returned, (
                    f"{waiting}, handle_request() {outcome.describe(bounds.HANDLER_REPORT)}")
                handled = server.take_handlers(1, until="finish",
                                               timeout=bounds.HANDLER_REPORT)
                assert handled and handled[0].finished, (
                    f"{waiting}, handle_request() ran no handler to its end within "
                    f"{bounds.HANDLER_REPORT:g}s")
                if number == 1 and len(sent) > 1:
                    time.sleep(bounds.QUIET)
                    extra = server.untaken()
                    # "Process a single request."
                    assert not extra, (
                        f"{waiting}, one handle_request() call ran {1 + len(extra)} "
                        "handlers, not one")

    check()


# lifecycle.handle_timeout's one timeout longer than a second.
LONG_TIMEOUT = 1.2


@contract("lifecycle.handle_timeout", servers=TCP_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.timeout")
def test_lifecycle_handle_timeout(serve: Callable[..., ServedServer],
                                  server_class: str) -> None:
    """With timeout set and no request coming, handle_request() waits about that long, not
    less, then calls handle_timeout() once and returns."""
    server = serve(serve=False)

    # One number in a small range; each example waits that long. And one timeout of more
    # than a second, as real servers set them: the range's are all shorter.
    @for_slow_scenarios(divisor=4)
    @example(timeout=0.1)
    @example(timeout=LONG_TIMEOUT)
    @given(timeout=st.floats(MIN_POLL, MAX_POLL))
    def check(timeout: float) -> None:
        server.set_attributes(timeout=timeout)
        since = len(server.calls())
        bound = timeout + bounds.HANDLE_TIMEOUT_SLACK
        outcome = server.call("handle_request", timeout=bound)
        # "If no request is received within timeout seconds, handle_timeout() will be
        # called and handle_request() will return."
        assert outcome.returned, (
            f"with timeout = {timeout:.3f} and no request, handle_request() "
            f"{outcome.describe(bound)}")
        assert outcome.elapsed >= timeout - bounds.TIMEOUT_SLACK, (
            f"with timeout = {timeout:.3f} and no request, handle_request() returned after "
            f"{outcome.elapsed:.3f}s, before the timeout")
        timeouts = _calls_of(server, since, "handle_timeout")
        assert len(timeouts) == 1, (
            f"with timeout = {timeout:.3f} and no request, handle_request() called "
            f"handle_timeout() {len(timeouts)} times, not once")

    check()


# The examples of lifecycle.handle_request_socket_timeout: which of the server socket's
# timeout (settimeout()) and the server's timeout attribute is set, and which is shorter.
SOCKET_TIMEOUT_ONLY = "socket timeout only"
SOCKET_TIMEOUT_SHORTER = "socket timeout shorter"
TIMEOUT_SHORTER = "timeout shorter"


def _timeouts(case: str, shorter: float) -> tuple[float, float | None]:
    """(the socket's timeout, the timeout attribute) of a case: the longer one, when both
    are set, lasts past the bound of handle_request(), so that waiting for it fails."""
    longer = shorter + bounds.HANDLE_TIMEOUT_SLACK + bounds.QUIET
    return {SOCKET_TIMEOUT_ONLY: (shorter, None),
            SOCKET_TIMEOUT_SHORTER: (shorter, longer),
            TIMEOUT_SHORTER: (longer, shorter)}[case]


@contract("lifecycle.handle_request_socket_timeout", servers=TCP_SERVERS, level=SHOULD,
          reference=SOURCE)
def test_lifecycle_handle_request_socket_timeout(serve: Callable[..., ServedServer],
                                                 server_class: str) -> None:
    """With a timeout set on the server's socket (settimeout()) and no request coming,
    handle_request() waits the shorter of that and the timeout attribute (if set), not
    less, then returns.

    The stdlib's "Support people who used socket.settimeout() to escape handle_request
    before self.timeout was available". That it calls handle_timeout() then is
    lifecycle.handle_timeout's to check. A handle_request() still waiting at its bound is
    sent a request, which its handler ends at once, so that it returns before the next
    example."""
    server = serve(Idle(), serve=False)

    # One number in a small range and three cases; each example waits that long.
    @for_slow_scenarios(divisor=4)
    @example(shorter=0.1, case=SOCKET_TIMEOUT_ONLY)
    @example(shorter=0.1, case=SOCKET_TIMEOUT_SHORTER)
    @example(shorter=0.1, case=TIMEOUT_SHORTER)
    @given(shorter=st.floats(MIN_POLL, MAX_POLL),
           case=st.sampled_from((SOCKET_TIMEOUT_ONLY, SOCKET_TIMEOUT_SHORTER, TIMEOUT_SHORTER)))
    def check(shorter: float, case: str) -> None:
        socket_timeout, timeout = _timeouts(case, shorter)
        server.set_socket_timeout(socket_timeout)
        server.set_attributes(timeout=timeout)
        given_as = (f"with the socket's timeout {socket_timeout:.3f} and timeout = "
                    + ("None" if timeout is None else f"{timeout:.3f}") + " and no request")
        wanted = (f"the socket's timeout, {shorter:.3f}s" if timeout is None
                  else f"the shorter of the two, {shorter:.3f}s")
        bound = shorter + bounds.HANDLE_TIMEOUT_SLACK
        task = server.call_in_background("handle_request")
        outcome = server.join(task, timeout=bound)
        if outcome.hung:
            stream.connect(server.address).close()
            server.join(task)
        assert outcome.returned, (
            f"{given_as}, handle_request() {outcome.describe(bound)}; it must wait at most "
            f"{wanted}")
        assert outcome.elapsed >= shorter - bounds.TIMEOUT_SLACK, (
            f"{given_as}, handle_request() returned after {outcome.elapsed:.3f}s, before "
            f"{wanted}")

    check()


@contract("lifecycle.serve_forever_timeout", servers=TCP_SERVERS, reference=SERVE_FOREVER_DOC)
def test_lifecycle_serve_forever_timeout(serve: Callable[..., ServedServer],
                                         server_class: str) -> None:
    """serve_forever() ignores timeout: however short it is, the idle loop never calls
    handle_timeout() and runs on until shutdown()."""
    server = serve(serve=False)

    @for_slow_scenarios()
    @example(timeout=0.05, poll_interval=0.1)
    @given(timeout=st.floats(MIN_POLL, MAX_POLL), poll_interval=st.floats(MIN_POLL, MAX_POLL))
    def check(timeout: float, poll_interval: float) -> None:
        server.set_attributes(timeout=timeout)
        since = len(server.calls())
        loop = _serve_in_background(server, poll_interval)
        # Long enough for a loop that honoured timeout to have timed out at least once.
        window = timeout + poll_interval + bounds.QUIET
        running = server.join(loop, timeout=window)
        # "Ignores the timeout attribute."
        assert running.hung, (
            f"with timeout = {timeout:.3f}, serve_forever({poll_interval:.3f}) "
            f"{running.describe(window)}, without shutdown()")
        timeouts = [call for call in server.calls()[since:]
                    if call.method == "handle_timeout"]
        _stop(server, loop)
        assert not timeouts, (
            f"with timeout = {timeout:.3f}, serve_forever({poll_interval:.3f}) called "
            f"handle_timeout() {len(timeouts)} times in {window:.2f}s")

    check()


@contract("lifecycle.service_actions", servers=TCP_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.service_actions")
def test_lifecycle_service_actions(serve: Callable[..., ServedServer],
                                   server_class: str) -> None:
    """serve_forever(poll_interval=0.5) calls service_actions() on every pass of its loop:
    while it is idle, about once per poll_interval, 0.5s when it is not given."""
    server = serve(serve=False)

    # The default (no poll_interval) is one fixed case: the explicit example checks it.
    @for_slow_scenarios()
    @example(poll_interval=0.1)
    @example(poll_interval=None)
    @given(poll_interval=st.floats(5 * MIN_POLL, MAX_POLL))
    def check(poll_interval: float | None) -> None:
        interval = DEFAULT_POLL if poll_interval is None else poll_interval
        window = min(bounds.IDLE_LOOP, max(bounds.IDLE_LOOP / 2, IDLE_POLLS * interval))
        loop = _serve_in_background(server, poll_interval)
        first = server.state().service_actions_calls
        started = time.monotonic()
        time.sleep(window)
        calls = server.state().service_actions_calls - first
        watched = time.monotonic() - started
        expected = watched / interval
        # Fewer calls than that: a loop starved of the CPU on a busy machine catches up
        # within LOOP_SLACK; a loop that does not pass that often does not.
        needed = math.ceil(RATE_LOW * expected)
        caught_up = calls
        deadline = time.monotonic() + bounds.LOOP_SLACK
        while caught_up < needed and time.monotonic() < deadline:
            time.sleep(interval)
            caught_up = server.state().service_actions_calls - first
        _stop(server, loop)
        # service_actions(): "This is called in the serve_forever() loop." / serve_forever():
        # "Poll for shutdown every poll_interval seconds." (poll_interval=0.5)
        assert calls <= RATE_HIGH * expected + 2, (
            f"an idle {_serve_forever_call(poll_interval)} called service_actions() {calls} "
            f"times in {watched:.2f}s, not about {expected:.0f}")
        assert caught_up >= needed, (
            f"an idle {_serve_forever_call(poll_interval)} called service_actions() {calls} "
            f"times in {watched:.2f}s ({caught_up} by {bounds.LOOP_SLACK:g}s later), not "
            f"about {expected:.0f}")

    check()
