"""What threading and forking servers leave behind: threads, child processes, zombies.

Documentation, ForkingMixIn and ThreadingMixIn: "block_on_close: ForkingMixIn.server_close
waits until all child processes complete, except if block_on_close attribute is False.
ThreadingMixIn.server_close waits until all non-daemon threads complete, except if
block_on_close attribute is False." "daemon_threads: For ThreadingMixIn use daemonic
threads by setting ThreadingMixIn.daemon_threads to True to not wait until threads
complete." (changed in 3.7) "max_children: Specify how many child processes will exist to
handle requests at a time for ForkingMixIn. If the limit is reached, new requests will wait
until one child process has finished." And serve_forever(): "the ForkingMixIn class uses
service_actions() to clean up zombie child processes."

Whether a handler's thread or child is still running is asked of the harness, by the
handler's own thread or process id; a server's close is timed against a handler that
sleeps, so that "waits" and "does not wait" are told apart by seconds, not milliseconds.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import datagram, round_trip, stream, waiting
from conformance.contracts.catalog import (
    CONCURRENT_SERVERS,
    DOCS,
    FORKING_SERVERS,
    SHOULD,
    SOURCE,
    contract,
)
from conformance.harness import Handler, HandlerSpec, Idle, ServedServer
from conformance.profiles import for_slow_scenarios
from conformance.strategies import ClientPlan, WritePattern, ascii_payloads, payloads

MIXIN_DOC = DOCS + "#socketserver.ForkingMixIn"
# The limit the kit sets: small, so that a handful of clients exceeds it.
MAX_CHILDREN = 2
# More clients than that at once, within the listen backlog of 5.
MAX_BURST = 5
# How long each handler sleeps in the max_children scenario: long enough that children
# forked together are alive together.
CHILD_SLEEP = 0.3
# The largest max_children the kit tries when children are reaped elsewhere.
MAX_CHILDREN_TRIED = 4
# The poll_interval of this module's serve_forever() loops.
SERVE_POLL = 0.05
# The handler sleeps over datagrams that start with this: the busy request's.
BUSY_PREFIX = b"BUSY "


@contract("resources.block_on_close", servers=CONCURRENT_SERVERS,
          reference=DOCS + "#socketserver.ForkingMixIn.block_on_close", since=(3, 7))
def test_resources_block_on_close(serve: Callable[..., ServedServer],
                                  server_class: str) -> None:
    """server_close() of a threading or forking server waits until every handler thread
    and child process has finished, so that none outlives it, unless block_on_close is
    False; it does not wait for daemon threads (daemon_threads = True).

    Each configuration runs on a server of its own whose handler sleeps; server_close() is
    called (after shutdown()) while the handler still sleeps. A server whose handler had
    already finished by then (one that handles requests in its serve_forever() loop, so
    that shutdown() itself waited) leaves nothing to wait or not to wait for."""
    configurations: list[tuple[str, dict[str, Any], bool]] = [
        ("block_on_close = False", {"block_on_close": False}, False),
        ("the default attributes", {}, True),
    ]
    if server_class.startswith("Threading"):
        configurations.insert(0, ("daemon_threads = True", {"daemon_threads": True}, False))
    handler = Idle(sleep=bounds.SLOW_HANDLER)
    servers = [serve(handler, attrs=attrs) for _, attrs, _ in configurations]
    bound = bounds.SLOW_HANDLER + bounds.STOP
    with contextlib.ExitStack() as clients:
        for server in servers:
            clients.enter_context(waiting(server.address, b"request",
                                          is_datagram=server.is_datagram))
        handlers = [_started(server) for server in servers]
        # Those that must not wait go first, while every handler still sleeps.
        for (described, _, waits), server, handler in zip(configurations, servers, handlers):
            shutdown = server.call("shutdown", timeout=bound)
            assert shutdown.returned, f"with {described}, shutdown() {shutdown.describe(bound)}"
            if not server.running([handler]):
                continue
            close = server.call("server_close", timeout=bound)
            assert close.returned, f"with {described}, server_close() {close.describe(bound)}"
            still_running = bool(server.running([handler]))
            if waits:
                # "server_close waits until all child processes complete" / "until all
                # non-daemon threads complete"
                assert not still_running, (
                    f"with {described}, server_close() returned after "
                    f"{close.elapsed:.2f}s while the handler ({handler.ran_in}) was "
                    "still running: it did not wait for it")
            else:
                # "except if block_on_close attribute is False" / "to not wait until
                # threads complete"
                assert still_running, (
                    f"with {described}, server_close() took {close.elapsed:.2f}s and "
                    f"returned only once the handler ({handler.ran_in}) had finished: it "
                    "waited for it")


def _started(server: ServedServer) -> Handler:
    handlers = server.take_handlers(1, until="handle", timeout=bounds.HANDLER_REPORT)
    assert handlers, f"no handler started within {bounds.HANDLER_REPORT:g}s"
    return handlers[0]


@contract("resources.max_children", servers=FORKING_SERVERS,
          reference=DOCS + "#socketserver.ForkingMixIn.max_children")
def test_resources_max_children(serve: Callable[..., ServedServer],
                                server_class: str) -> None:
    """A forking server never has more than max_children child processes handling
    requests at once; further requests wait until fewer than max_children children run
    (a child has finished), and are then served.

    Also when max_children is lowered below the number of children running, as a program
    may do under load: a stream server then serves no new request until enough of them
    have finished. (Datagram children end with their one datagram, so only stream servers
    can be held at that point.)"""
    server = serve(HandlerSpec.reference(server_class, sleep=CHILD_SLEEP),
                   attrs={"max_children": MAX_CHILDREN})
    parent = server.harness.facts.pid

    @for_slow_scenarios(divisor=4)
    @example(sent=[b"one", b"two", b"three"])
    @given(sent=st.lists(ascii_payloads(min_size=1, max_size=256), min_size=1,
                         max_size=MAX_BURST))
    def check(sent: list[bytes]) -> None:
        timeout = bounds.echo_timeout(0) + CHILD_SLEEP * len(sent)
        watch = server.watch(len(sent))
        if server.is_datagram:
            received = [(reply.reply, reply.waited) for reply in
                        datagram.exchange_all(server.address, sent, timeout=timeout,
                                              watch=watch)]
        else:
            received = [(bytes(t.received), t.waited) for t in stream.exchange(
                server.address, [ClientPlan(data, WritePattern()) for data in sent],
                timeout=timeout, watch=watch)]
        handlers = server.take_handlers(len(sent), until="finish",
                                        timeout=bounds.HANDLER_REPORT)
        for number, (data, (reply, waited)) in enumerate(zip(sent, received), 1):
            # "new requests will wait until one child process has finished"
            echoed_right = reply == data.upper()
            assert echoed_right, (
                f"request {number} of {len(sent)} was not served (it got {reply!r}"
                + (f", then nothing more {waited})" if waited else ")"))
        in_children = [h for h in handlers if h.finished and h.pid != parent]
        most, moment = _most_at_once(in_children)
        # "Specify how many child processes will exist to handle requests at a time"
        assert most <= MAX_CHILDREN, (
            f"with max_children = {MAX_CHILDREN}, {most} child processes were handling "
            f"requests at once ({moment}), out of {len(sent)} requests sent together")

    check()
    if not server.is_datagram:
        _check_lowered_limit(server, parent)


# resources.max_children's lowered limit: how many clients hold a child each, and the limit
# it is then lowered to. Once one of them has left, more children run than that limit.
HELD_CHILDREN = 3
LOWERED_LIMIT = 1


def _check_lowered_limit(server: ServedServer, parent: int) -> None:
    """With HELD_CHILDREN children running and max_children lowered to LOWERED_LIMIT, one
    child finishing frees no room: a new request waits until enough of them have
    finished. (The stdlib waits while len(active_children) >= max_children.) Requests
    handled in the server's own process are no children: concurrency.fork_isolation
    judges those, and there is no limit to check."""
    server.set_attributes(max_children=HELD_CHILDREN)
    seen_before = len(server.handlers())
    held = [f"held {number}".encode() for number in range(1, HELD_CHILDREN + 1)]
    with contextlib.ExitStack() as holding:
        clients = [holding.enter_context(waiting(server.address, data, is_datagram=False,
                                                 half_close=False)) for data in held]
        for number, (client, data) in enumerate(zip(clients, held), 1):
            echo = client.receive(bounds.SERVED_ECHO)
            assert echo == data.upper(), (
                f"with max_children = {HELD_CHILDREN}, client {number} of {HELD_CHILDREN} "
                f"got {echo!r} within {bounds.SERVED_ECHO:g}s, expected {data.upper()!r}")
        server.poll()
        if any(handler.pid == parent for handler in server.handlers()[seen_before:]):
            return
        server.set_attributes(max_children=LOWERED_LIMIT)
        first, *others = clients
        first.sock.shutdown(socket.SHUT_WR)
        # Its handler, whichever it is: children report their setup() in any order.
        assert server.handlers_finished(since=seen_before, timeout=bounds.HANDLER_REPORT), (
            f"no held client's handler finished within {bounds.HANDLER_REPORT:g}s of the "
            "first one's EOF")
        running = len(others)
        described = (f"with {running} children running and max_children lowered from "
                     f"{HELD_CHILDREN} to {LOWERED_LIMIT}")
        with waiting(server.address, b"new", is_datagram=False, half_close=False) as new:
            early = new.receive(bounds.OVER_LIMIT_WATCH)
            # "If the limit is reached, new requests will wait until one child process has
            # finished."
            assert early is None, (
                f"{described}, a new request was served at once (its client got "
                f"{early!r}): the server forked a child beyond the limit")
            for client in others:
                client.sock.shutdown(socket.SHUT_WR)
            echo = new.receive(bounds.SERVED_ECHO)
            assert echo == b"NEW", (
                f"{described}, a new request waited, but once the other children had "
                f"finished it got {echo!r} within {bounds.SERVED_ECHO:g}s, expected b'NEW'")


def _most_at_once(handlers: list[Handler]) -> tuple[int, str]:
    """The largest number of handlers between setup() and finish() at one moment, and
    which processes they were."""
    moments = sorted([(h.setup.time, 1, h) for h in handlers]
                     + [(h.finish.time, 0, h) for h in handlers],
                     key=lambda moment: moment[:2])
    active: list[Handler] = []
    most, described = 0, "none"
    for _, starts, handler in moments:
        if not starts:
            active.remove(handler)
            continue
        active.append(handler)
        if len(active) > most:
            most = len(active)
            described = "pids " + ", ".join(str(h.pid) for h in active)
    return most, described


@contract("resources.children_reaped", servers=FORKING_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.serve_forever")
def test_resources_children_reaped(serve: Callable[..., ServedServer],
                                   server_class: str) -> None:
    """While a forking server runs serve_forever(), every child process that has finished
    its request is reaped: none is left behind as a zombie."""
    server = serve()
    parent = server.harness.facts.pid

    @example(payload=b"hello")
    @given(payload=payloads(max_size=1024))
    def check(payload: bytes) -> None:
        round_trip(server.address, payload, is_datagram=server.is_datagram,
                   watch=server.watch())
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
        child = handlers[0].pid
        if child == parent:
            # Handled in the server's own process: there is no child to reap.
            return
        deadline = time.monotonic() + bounds.CHILD_REAPED
        while True:
            state = server.processes(child)
            left = child in state.children or child in state.zombies
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        # "the ForkingMixIn class uses service_actions() to clean up zombie child
        # processes"
        assert child not in state.zombies, (
            f"the child process {child} finished its request but is still a zombie "
            f"{bounds.CHILD_REAPED:g}s later: the server did not reap it")
        assert child not in state.children, (
            f"the child process {child} is still running {bounds.CHILD_REAPED:g}s after "
            "its handler's finish()")

    check()


@contract("resources.children_reaped_elsewhere", servers=FORKING_SERVERS, level=SHOULD,
          reference=SOURCE)
def test_resources_children_reaped_elsewhere(serve: Callable[..., ServedServer],
                                             server_class: str) -> None:
    """A forking server forgets a child that something else has reaped (SIGCHLD set to
    SIG_IGN, as daemons do, or a library's own waitpid()) by the next pass of its
    serve_forever() loop: that child no longer counts against max_children, so with one
    child still busy a new request is served at once, not after the busy one ends.

    ForkingMixIn.collect_children(), which service_actions() calls on every pass, discards
    a child whose waitpid() fails with ChildProcessError ("someone else reaped it"). With
    max_children = N, N - 1 requests are served one after another (their children exit
    and the kernel reaps them); once the loop has gone round, one more request is kept
    busy (a stream client that stays connected, a datagram whose handler sleeps), and a
    last request must then be served while the busy one still runs."""
    server = serve(HandlerSpec.reference(server_class, sleep=bounds.SLOW_HANDLER,
                                         sleep_prefix=BUSY_PREFIX),
                   ignore_sigchld=True, poll_interval=SERVE_POLL)
    parent = server.harness.facts.pid

    @for_slow_scenarios()
    @example(max_children=2, payload=b"hello")
    @given(max_children=st.integers(2, MAX_CHILDREN_TRIED),
           payload=ascii_payloads(min_size=1, max_size=256))
    def check(max_children: int, payload: bytes) -> None:
        server.set_attributes(max_children=max_children)
        seen_before = len(server.handlers())
        exited = []
        for _ in range(max_children - 1):
            reply, waited = _reply_to(server, payload)
            echoed_right = reply == payload.upper()
            assert echoed_right, (
                f"with max_children = {max_children}, a request made while no other was "
                f"being handled got no echo {waited}")
            handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
            assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
            exited.append(handlers[0].pid)
        if parent in exited:
            # Handled in the server's own process: there are no children to forget.
            return
        _wait_until_gone(server, exited)
        _wait_for_loop_passes(server, 2)
        # A request whose handler stays busy: a stream client that stays connected and
        # silent, or a datagram whose handler sleeps.
        with waiting(server.address, BUSY_PREFIX + b"request" if server.is_datagram else None,
                     is_datagram=server.is_datagram):
            busy = server.take_handlers(1, until="handle", timeout=bounds.HANDLER_REPORT)
            assert busy, (
                f"the busy request's handler did not start within {bounds.HANDLER_REPORT:g}s")
            reply, waited = _reply_to(server, payload)
            server.poll()
            busy_returned = any(h.uid == busy[0].uid and h.handle_returned
                                for h in server.handlers())
            # collect_children(): "except ChildProcessError: # someone else reaped it"
            echoed_right = reply == payload.upper()
            assert echoed_right and not busy_returned, (
                f"with max_children = {max_children} and SIGCHLD ignored, after "
                f"{len(exited)} child(ren) had exited (reaped by the kernel) and one was "
                "still busy, a new request was "
                + (f"not served (no echo {waited})" if reply is None
                   else "served only once the busy one had ended")
                + ": the server still counted the exited children against max_children")
        server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        # Leave no child busy: with max_children children alive, serve_forever() waits in
        # collect_children() until one ends, and the next example (or the shutdown() that
        # ends the test) with it.
        server.handlers_finished(since=seen_before, every=True,
                                 timeout=bounds.SLOW_HANDLER + bounds.HANDLER_REPORT)

    check()


def _reply_to(server: ServedServer, payload: bytes) -> tuple[bytes | None, str]:
    """What one client that sends ``payload`` (and half-closes) receives within
    SERVED_ECHO, or until soon after the server is done with its request (None if nothing
    came); and how long it waited, in words."""
    if server.is_datagram:
        reply = datagram.exchange(server.address, payload, timeout=bounds.SERVED_ECHO,
                                  watch=server.watch())
        return reply.reply, reply.waited
    (transcript,) = stream.exchange(server.address, [ClientPlan(payload, WritePattern())],
                                    timeout=bounds.SERVED_ECHO, watch=server.watch())
    return bytes(transcript.received) or None, transcript.waited


def _wait_until_gone(server: ServedServer, pids: list[int]) -> None:
    """Wait until none of these child processes exists any more (SIGCHLD ignored: the
    kernel reaps them as they exit)."""
    deadline = time.monotonic() + bounds.CHILD_REAPED
    while True:
        left = [pid for pid in pids if pid in server.processes(*pids).children]
        if not left:
            return
        assert time.monotonic() < deadline, (
            f"child process(es) {left} still existed {bounds.CHILD_REAPED:g}s after their "
            "handlers' finish(), with SIGCHLD ignored")
        time.sleep(0.05)


def _wait_for_loop_passes(server: ServedServer, passes: int) -> None:
    """Wait until serve_forever() has called service_actions() ``passes`` more times."""
    first = server.state().service_actions_calls
    deadline = time.monotonic() + passes * (SERVE_POLL + bounds.LOOP_SLACK)
    while server.state().service_actions_calls < first + passes:
        assert time.monotonic() < deadline, (
            f"serve_forever() did not go round its loop {passes} times within "
            f"{passes * (SERVE_POLL + bounds.LOOP_SLACK):g}s")
        time.sleep(0.01)
