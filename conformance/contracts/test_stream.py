"""Several clients at once, coming and going in any pattern, against one server.

Documentation, "socketserver.TCPServer Example": the handler reads with
``self.request.recv(1024)`` and replies with ``self.request.sendall(self.data.upper())``.
``serve_forever()``: "Handle requests until an explicit shutdown() request."
``handle_error()``: "The default action is to print the traceback to standard error and
continue handling further requests." So a client that resets its connection mid-conversation
costs the server one request at most, never the others' conversations or its own service.
"Server Creation Notes": the synchronous servers "process requests synchronously; each
request must be completed before the next request can be started", so there a client is
only owed its echo once the clients connected before it are done.

The check is a Hypothesis state machine: rules open clients, send chunks, pause, read,
half-close and abort with a reset; invariants compare what every client received with a
model of what it is owed.
"""

from __future__ import annotations

import itertools
import select
import socket
import time
from collections.abc import Callable

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conformance import bounds
from conformance.clients import stream
from conformance.contracts._messages import difference, excerpt
from conformance.contracts.catalog import DOCS, TCP_SERVERS, contract
from conformance.harness import ServedServer
from conformance.profiles import for_state_machines
from conformance.strategies import KIB, ascii_payloads

# Clients connected at once, counting those a synchronous server has not reached yet:
# with the one a check opens, this stays within the listen backlog of 5.
MAX_OPEN = 4
# Small chunks, sizes around the handler's 1024-byte reads included: what a queued client
# sends in a whole run still fits in the kernel's buffers until the server reaches it.
CHUNKS = ascii_payloads(min_size=1, max_size=2 * KIB)
PAUSES = st.sampled_from([0.0, 0.002, 0.01, 0.05])
PROBE = b"still serving?"
# Servers of these classes handle their requests concurrently.
CONCURRENCY_MIXINS = ("ThreadingMixIn", "ForkingMixIn")
# How much of a run's history a failure message recalls.
HISTORY = 12


class Client:
    """One connection of a run: what it sent and received, and how it ended."""

    def __init__(self, number: int, sock: socket.socket) -> None:
        self.number = number
        self.sock = sock
        self.sent = bytearray()
        self.received = bytearray()
        self.half_closed = False
        self.aborted = False
        self.eof = False
        self.error: str | None = None

    @property
    def expected(self) -> bytes:
        """The echo of everything it sent: the reference handler upper-cases it."""
        return bytes(self.sent).upper()

    @property
    def echoed(self) -> bool:
        return len(self.received) >= len(self.sent)

    @property
    def readable(self) -> bool:
        return not (self.aborted or self.eof or self.error or self.sock.fileno() < 0)

    def describe(self) -> str:
        return (f"client {self.number} sent {len(self.sent)} bytes {excerpt(self.sent)} and "
                f"received {len(self.received)} bytes {excerpt(self.received)}")

    def pump(self) -> None:
        """Take in whatever has arrived, without waiting."""
        while self.readable:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                return
            if not data:
                self.eof = True
            self.received += data

    def close(self) -> None:
        self.sock.close()


class _Target:
    """The server under test for successive runs of the machine.

    Runs share the test's server. After a run that could not leave it verifiably serving
    (a run that found a fault, or whose clients could not finish), the next run gets a
    fresh server: each run, and Hypothesis' replay of a failing one, starts on a server
    that serves, so a fault is reported by the run that caused it, not by the next one.
    """

    def __init__(self, server: ServedServer, serve: Callable[..., ServedServer],
                 synchronous: bool) -> None:
        self.server = server
        self.synchronous = synchronous
        self._serve = serve
        self.verified = True

    def server_for_run(self) -> ServedServer:
        if not self.verified:
            self.server.stop()
            self.server = self._serve()
        self.verified = False
        return self.server


class ClientPatterns(RuleBasedStateMachine):
    """Clients of one run against the server, and the model of what each is owed.

    The model is a queue of connections in the order they were made. A concurrent server
    serves every open connection at once. A synchronous one serves the first; an aborted
    connection stays in its queue until the server has reached and dropped it."""

    clients = Bundle("clients")

    def __init__(self, target: _Target) -> None:
        super().__init__()
        self.target = target
        self.server = target.server_for_run()
        self.numbers = itertools.count(1)
        self.queue: list[Client] = []
        self.every_client: list[Client] = []
        self.history: list[str] = []
        # Clients aborted since the others and a new client were last shown to be served.
        self.unchecked_aborts: list[Client] = []

    # -- the model ---------------------------------------------------------------------

    def _settle(self) -> None:
        """Drop the aborted connections the server is done with: all of them on a
        concurrent server, those it has reached on a synchronous one."""
        if not self.target.synchronous:
            self.queue = [c for c in self.queue if not c.aborted]
        while self.queue and self.queue[0].aborted:
            self.queue.pop(0)

    def _served(self) -> list[Client]:
        """The open clients the server owes progress now."""
        self._settle()
        return self.queue[:1] if self.target.synchronous else list(self.queue)

    def _room(self) -> bool:
        """Whether one more client keeps the connections waiting within the backlog."""
        self._settle()
        return len(self.queue) < MAX_OPEN

    def _free(self) -> bool:
        """Whether the server would serve a new client at once."""
        self._settle()
        return not self.target.synchronous or not self.queue

    def _recall(self) -> str:
        recent = self.history[-HISTORY:]
        more = "..., " if len(self.history) > HISTORY else ""
        return f" (the run so far: {more}{', '.join(recent) or 'nothing'})"

    # -- waiting on the server ---------------------------------------------------------

    def _await(self, clients: list[Client], bound: float) -> str | None:
        """Take in what ``clients`` receive until each has the echo of all it sent; None
        if that is exactly what they got, otherwise what went wrong: the bound passed, a
        connection ended early, the server's serve_forever() ended, or the bytes differ."""
        start = time.monotonic()
        deadline = start + bound
        next_check = start + bounds.SERVE_LOOP_CHECK
        while True:
            for client in clients:
                client.pump()
            waiting = [c for c in clients if not c.echoed]
            if not waiting:
                wrong = [c for c in clients if bytes(c.received) != c.expected]
                return "which is not what it sent, upper-cased" if wrong else None
            ended = [c for c in waiting if not c.readable]
            if ended:
                return "then " + ("an error: " + str(ended[0].error) if ended[0].error
                                  else "EOF, before the rest of its echo")
            now = time.monotonic()
            if now >= deadline:
                return f"within {bound:g}s"
            if now >= next_check:
                if not self.server.serve_forever_running():
                    return (f"within {now - start:.1f}s, and the server's serve_forever() "
                            "has ended: it no longer serves anyone")
                next_check = now + 1.0
            select.select([c.sock for c in waiting], [], [],
                          max(0.0, min(deadline, next_check) - now))

    def _send(self, client: Client, data: bytes) -> None:
        """Send all of ``data``, taking in the echo meanwhile so neither side blocks."""
        deadline = time.monotonic() + bounds.SERVED_ECHO
        view = memoryview(data)
        while view:
            client.pump()
            remaining = deadline - time.monotonic()
            assert remaining > 0, (
                f"client {client.number} could not send {len(data)} bytes within "
                f"{bounds.SERVED_ECHO:g}s; {client.describe()}{self._recall()}")
            select.select([client.sock] if client.readable else [], [client.sock], [],
                          remaining)
            try:
                view = view[client.sock.send(view):]
            except BlockingIOError:
                continue
            except OSError as exc:
                raise AssertionError(
                    f"client {client.number}'s send failed ({type(exc).__name__}: {exc}): "
                    f"the server ended its connection; {client.describe()}"
                    + self._recall()) from None
        client.sent += data

    def _connect(self) -> Client:
        client = Client(next(self.numbers), stream.connect(self.server.address))
        client.sock.setblocking(False)
        self.every_client.append(client)
        return client

    def _round_trip(self, client: Client, payload: bytes, why: str) -> None:
        """A whole conversation: send, half-close, collect the echo, close."""
        self._send(client, payload)
        client.sock.shutdown(socket.SHUT_WR)
        client.half_closed = True
        stopped = self._await([client], bounds.SERVED_ECHO)
        client.close()
        # "continue handling further requests"
        assert stopped is None, (
            f"{why}, a new client was not served: {client.describe()} {stopped}; "
            + difference(client.received, client.expected) + self._recall())

    # -- rules -------------------------------------------------------------------------

    def _open(self) -> Client:
        client = self._connect()
        self.queue.append(client)
        self.history.append(f"client {client.number} opened")
        return client

    # Every run starts with a client open, so Hypothesis' simplest run is the plainest
    # disturbance: that client aborts (the first rule by name), then a new client must be
    # served. A target broken that way fails on its first run.
    @initialize(target=clients)
    def open_first_client(self) -> Client:
        return self._open()

    @precondition(lambda self: self._room())
    @rule(target=clients)
    def open_client(self) -> Client:
        return self._open()

    @rule(client=clients, chunk=CHUNKS)
    def send(self, client: Client, chunk: bytes) -> None:
        self._send(client, chunk)
        self.history.append(f"client {client.number} sent {len(chunk)} bytes")

    @rule(seconds=PAUSES)
    def pause(self, seconds: float) -> None:
        time.sleep(seconds)
        self.history.append(f"pause {seconds:g}s")

    @rule(client=clients)
    def read(self, client: Client) -> None:
        """Read what has arrived; a client being served has all of its echo so far."""
        self.history.append(f"client {client.number} read")
        if client not in self._served():
            client.pump()
            return
        stopped = self._await([client], bounds.SERVED_ECHO)
        # "self.request.sendall(self.data.upper())"
        assert stopped is None, (
            f"while the server was serving it, {client.describe()} {stopped}; "
            + difference(client.received, client.expected) + self._recall())

    @rule(client=consumes(clients))
    def half_close(self, client: Client) -> None:
        """The client is done sending; the rest of its echo is collected once it is served."""
        client.sock.shutdown(socket.SHUT_WR)
        client.half_closed = True
        self.history.append(f"client {client.number} half-closed")

    @rule(client=consumes(clients))
    def abort(self, client: Client) -> None:
        """The client resets its connection: SO_LINGER 0, then close()."""
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               stream.RESET_ON_CLOSE)
        client.close()
        client.aborted = True
        self.unchecked_aborts.append(client)
        self.history.append(f"client {client.number} aborted")

    @precondition(lambda self: self._free())
    @rule(payload=ascii_payloads(min_size=1, max_size=2 * KIB))
    def open_again(self, payload: bytes) -> None:
        """A new client holds a whole conversation while the others stay as they are."""
        client = self._connect()
        self.history.append(f"client {client.number} opened for a whole conversation")
        self._round_trip(client, payload, "while the server was free to serve one")

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def received_a_prefix_of_the_echo(self) -> None:
        for client in self.queue:
            if client.aborted:
                continue
            client.pump()
            expected = client.expected[:len(client.received)]
            # "self.request.sendall(self.data.upper())"
            assert client.received == expected, (
                f"{client.describe()}, which is not what it sent, upper-cased: "
                + difference(client.received, client.expected) + self._recall())
            # "Handle requests until an explicit shutdown() request."
            assert not client.error, (
                f"{client.describe()}, then its connection failed: {client.error}"
                + self._recall())
            assert not client.eof or client.half_closed, (
                f"{client.describe()}, then EOF: the server closed the connection before "
                "the client half-closed" + self._recall())

    @invariant()
    def half_closed_clients_receive_the_rest(self) -> None:
        """A half-closed client the server serves gets the rest of its echo and is done; a
        synchronous server then moves on to the next client."""
        while True:
            finishing = [c for c in self._served() if c.half_closed]
            if not finishing:
                return
            for client in finishing:
                stopped = self._await([client], bounds.SERVED_ECHO)
                # "self.request.sendall(self.data.upper())"
                assert stopped is None, (
                    f"after it half-closed, {client.describe()} {stopped}; "
                    + difference(client.received, client.expected) + self._recall())
                client.close()
                self.queue.remove(client)
                self.history.append(f"client {client.number} got its echo")

    @precondition(lambda self: self.unchecked_aborts)
    @invariant()
    def aborted_clients_disturb_no_one(self) -> None:
        """After a client aborts, the clients being served still get their echo and, as
        soon as the server is free, a new client is served."""
        aborted = ", ".join(f"client {c.number}" for c in self.unchecked_aborts)
        for client in self._served():
            stopped = self._await([client], bounds.SERVED_ECHO)
            # "continue handling further requests"
            assert stopped is None, (
                f"after {aborted} aborted, {client.describe()} {stopped}; "
                + difference(client.received, client.expected) + self._recall())
        if self._free():
            client = self._connect()
            self.history.append(f"client {client.number} opened after {aborted} aborted")
            self._round_trip(client, PROBE, f"after {aborted} aborted")
            self.unchecked_aborts = []

    def teardown(self) -> None:
        """Let every open client finish its conversation, then check that a new client is
        served: only then may the next run use this server."""
        deadline = time.monotonic() + bounds.WIND_DOWN
        try:
            open_clients = [c for c in self.queue if not c.aborted]
            for client in open_clients:
                if not client.half_closed:
                    client.sock.shutdown(socket.SHUT_WR)
                    client.half_closed = True
            if self._await(open_clients, max(0.0, deadline - time.monotonic())) is None:
                probe = self._connect()
                probe.sock.sendall(PROBE)
                probe.sent += PROBE
                probe.sock.shutdown(socket.SHUT_WR)
                self.target.verified = self._await(
                    [probe], max(0.0, deadline - time.monotonic())) is None
        except OSError:
            self.target.verified = False
        finally:
            for client in self.every_client:
                client.close()


@contract("stream.client_patterns", servers=TCP_SERVERS,
          reference=DOCS + "#socketserver-tcpserver-example")
def test_stream_client_patterns(server: ServedServer,
                                serve: Callable[..., ServedServer]) -> None:
    """With the reference handler, however several clients interleave opening, sending in
    chunks, pausing, reading, half-closing and aborting with a reset, each client only
    ever receives a prefix of what it sent, upper-cased, and all of it once it has
    half-closed and its turn has come; an aborted client disturbs no other client, and
    the server goes on serving new ones.

    A client's turn comes at once on threading and forking servers (subclasses of
    ThreadingMixIn or ForkingMixIn), and on the synchronous ones once the clients connected
    before it are done. A failure names the client, what it sent and what it received, and
    recalls the run that led there.
    """
    inspected = server.harness.inspect(server.server_class, subclass_of=CONCURRENCY_MIXINS)
    synchronous = not any(inspected.subclass_of.values())
    target = _Target(server, serve, synchronous)
    run_state_machine_as_test(lambda: ClientPatterns(target), settings=for_state_machines())
