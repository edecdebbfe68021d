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
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import datagram, round_trip, stream
from conformance.contracts.catalog import ALL_SERVERS, DOCS, contract
from conformance.harness import ServedServer
from conformance.harness.observations import Handler
from conformance.harness.process import is_datagram_class
from conformance.profiles import for_slow_scenarios
from conformance.strategies import ClientPlan, WritePattern, ascii_payloads, payloads

CONCURRENT_SERVERS = tuple(name for name in ALL_SERVERS
                           if name.startswith(("Threading", "Forking")))
FORKING_SERVERS = tuple(name for name in ALL_SERVERS if name.startswith("Forking"))
MIXIN_DOC = DOCS + "#socketserver.ForkingMixIn"
# The limit the kit sets: small, so that a handful of clients exceeds it.
MAX_CHILDREN = 2
# More clients than that at once, within the listen backlog of 5.
MAX_BURST = 5
# How long each handler sleeps in the max_children scenario: long enough that children
# forked together are alive together.
CHILD_SLEEP = 0.3


def _reference_kind(server_class: str) -> str:
    return "udp-echo" if is_datagram_class(server_class) else "echo"


@contextlib.contextmanager
def _one_request(server: ServedServer) -> Iterator[None]:
    """One request to ``server`` whose client stays open, silent, until the block ends."""
    if server.is_datagram:
        with datagram.client_socket(server.address) as sock:
            sock.sendto(b"request", server.address if isinstance(server.address, str)
                        else tuple(server.address))
            yield
        return
    with stream.connect(server.address) as sock:
        sock.sendall(b"request")
        sock.shutdown(socket.SHUT_WR)
        yield


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
    handler = {"kind": "idle", "sleep": bounds.SLOW_HANDLER}
    servers = [serve(handler, attrs=attrs) for _, attrs, _ in configurations]
    with contextlib.ExitStack() as clients:
        for server in servers:
            clients.enter_context(_one_request(server))
        handlers = [_started(server) for server in servers]
        # Those that must not wait go first, while every handler still sleeps.
        for (described, _, waits), server, handler in zip(configurations, servers, handlers):
            shutdown = server.call("shutdown", timeout=bounds.SLOW_HANDLER + 5.0)
            assert shutdown["result"] == "ok", f"with {described}, shutdown() {shutdown}"
            if not server.running([handler]):
                continue
            close = server.call("server_close", timeout=bounds.SLOW_HANDLER + 5.0)
            assert close["result"] == "ok", f"with {described}, server_close() {close}"
            still_running = bool(server.running([handler]))
            if waits:
                # "server_close waits until all child processes complete" / "until all
                # non-daemon threads complete"
                assert not still_running, (
                    f"with {described}, server_close() returned after "
                    f"{close['elapsed']:.2f}s while the handler ({handler.ran_in}) was "
                    "still running: it did not wait for it")
            else:
                # "except if block_on_close attribute is False" / "to not wait until
                # threads complete"
                assert still_running, (
                    f"with {described}, server_close() took {close['elapsed']:.2f}s and "
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
    requests at once; further requests wait until a child has finished, and are then
    served."""
    server = serve({"kind": _reference_kind(server_class), "sleep": CHILD_SLEEP},
                   attrs={"max_children": MAX_CHILDREN})
    parent = server.harness.hello["pid"]

    @for_slow_scenarios(divisor=4)
    @example(sent=[b"one", b"two", b"three"])
    @given(sent=st.lists(ascii_payloads(min_size=1, max_size=256), min_size=1,
                         max_size=MAX_BURST))
    def check(sent: list[bytes]) -> None:
        timeout = bounds.echo_timeout(0) + CHILD_SLEEP * len(sent)
        if server.is_datagram:
            received = [reply.reply for reply in
                        datagram.exchange_all(server.address, sent, timeout=timeout)]
        else:
            received = [bytes(t.received) for t in stream.exchange(
                server.address, [ClientPlan(data, WritePattern()) for data in sent],
                timeout=timeout)]
        handlers = server.take_handlers(len(sent), until="finish",
                                        timeout=bounds.HANDLER_REPORT)
        for number, (data, reply) in enumerate(zip(sent, received), 1):
            # "new requests will wait until one child process has finished"
            assert reply == data.upper(), (
                f"request {number} of {len(sent)} was not served within {timeout:g}s "
                f"(it got {reply!r})")
        in_children = [h for h in handlers if h.has("finish") and h.setup["pid"] != parent]
        most, moment = _most_at_once(in_children)
        # "Specify how many child processes will exist to handle requests at a time"
        assert most <= MAX_CHILDREN, (
            f"with max_children = {MAX_CHILDREN}, {most} child processes were handling "
            f"requests at once ({moment}), out of {len(sent)} requests sent together")

    check()


def _most_at_once(handlers: list[Handler]) -> tuple[int, str]:
    """The largest number of handlers between setup() and finish() at one moment, and
    which processes they were."""
    moments = sorted([(h.setup["time"], 1, h) for h in handlers]
                     + [(h.first("finish")["time"], 0, h) for h in handlers],
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
            described = "pids " + ", ".join(str(h.setup["pid"]) for h in active)
    return most, described


@contract("resources.children_reaped", servers=FORKING_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.serve_forever")
def test_resources_children_reaped(serve: Callable[..., ServedServer],
                                   server_class: str) -> None:
    """While a forking server runs serve_forever(), every child process that has finished
    its request is reaped: none is left behind as a zombie."""
    server = serve()
    parent = server.harness.hello["pid"]

    @example(payload=b"hello")
    @given(payload=payloads(max_size=1024))
    def check(payload: bytes) -> None:
        round_trip(server.address, payload, is_datagram=server.is_datagram)
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
        child = handlers[0].setup["pid"]
        if child == parent:
            # Handled in the server's own process: there is no child to reap.
            return
        deadline = time.monotonic() + bounds.CHILD_REAPED
        while True:
            state = server.state()
            left = child in state["children"] or child in state["zombies"]
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        # "the ForkingMixIn class uses service_actions() to clean up zombie child
        # processes"
        assert child not in state["zombies"], (
            f"the child process {child} finished its request but is still a zombie "
            f"{bounds.CHILD_REAPED:g}s later: the server did not reap it")
        assert child not in state["children"], (
            f"the child process {child} is still running {bounds.CHILD_REAPED:g}s after "
            "its handler's finish()")

    check()
