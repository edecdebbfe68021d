"""Figure 3 of ``tox -e bench``: the kit's overhead per echo.upper example.

The exact client plans of an echo.upper run (the contract's explicit example, then what
``concurrent_clients()``, the strategy test_echo.py draws from, generates with Hypothesis
derandomized) are replayed two ways, example by example, alternating which goes first:

* raw: plain blocking sockets, a writer and a reader thread per client, against a plain
  ``socketserver.ThreadingTCPServer`` running the documentation's handler (loop
  ``recv(1024)``, ``sendall(data.upper())``) in this very process;
* kit: the kit's own stream clients (``conformance.clients.stream.exchange``) against
  ThreadingTCPServer with the kit's reference handler in a harness (the stdlib target's
  agent process), then the handler-report path (``take_handlers`` until every handler of
  the example has reported finish()), as a contract that checks its handlers does.

Both sides send the same chunks with the same pauses and check that every client got
``payload.upper()``. The figure is the kit's time per example over the raw replay's.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from conformance import bounds
from conformance.clients import stream
from conformance.harness import Echo, Harness, ServedServer
from conformance.strategies import ClientPlan, WritePattern, concurrent_clients
from conformance.targets import Target

SERVER_CLASS = "ThreadingTCPServer"
# The plan test_echo.py always checks first (its @example).
EXPLICIT_EXAMPLE = [ClientPlan(b"hello", WritePattern())]
RECV_SIZE = 1024
TARGET_RATIO = 3.0


def echo_plans(examples: int) -> list[list[ClientPlan]]:
    """The explicit example, then ``examples - 1`` examples drawn from the contract's own
    strategy, the same ones on every run (derandomized, no example database)."""
    drawn: list[list[ClientPlan]] = []

    @settings(max_examples=max(1, examples - 1), derandomize=True, database=None,
              deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(plans=concurrent_clients())
    def draw(plans: list[ClientPlan]) -> None:
        drawn.append(plans)

    draw()
    return [EXPLICIT_EXAMPLE, *drawn][:examples]


class _DocumentedEcho(socketserver.BaseRequestHandler):
    """The documentation's TCPServer example handler, looping until EOF."""

    def handle(self) -> None:
        while True:
            data = self.request.recv(RECV_SIZE)
            if not data:
                return
            self.request.sendall(data.upper())


class _RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _raw_client(address: tuple[str, int], plan: ClientPlan, timeout: float) -> bytes:
    """One client on plain sockets: writes the plan's chunks with its pauses from this
    thread while another reads, half-closes, and returns what came back."""
    received = bytearray()
    with socket.create_connection(address, timeout=timeout) as sock:

        def read() -> None:
            while len(received) < len(plan.payload):
                data = sock.recv(1 << 16)
                if not data:
                    return
                received.extend(data)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for pause, chunk in plan.chunks():
            if pause:
                time.sleep(pause)
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        reader.join(timeout)
    return bytes(received)


def raw_exchange(address: tuple[str, int], plans: list[ClientPlan], timeout: float,
                 ) -> list[bytes]:
    """Every client of one example at once, each in its own thread."""
    replies: list[bytes] = [b""] * len(plans)

    def run(index: int, plan: ClientPlan) -> None:
        replies[index] = _raw_client(address, plan, timeout)

    threads = [threading.Thread(target=run, args=(i, plan), daemon=True)
               for i, plan in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return replies


def _check(side: str, plans: list[ClientPlan], replies: list[bytes]) -> None:
    for number, (plan, reply) in enumerate(zip(plans, replies), 1):
        if reply != plan.payload.upper():
            raise RuntimeError(f"{side} replay: client {number} of {len(plans)} received "
                               f"{len(reply)} of {len(plan.payload)} bytes, or other bytes")


def time_raw(address: tuple[str, int], plans: list[ClientPlan]) -> float:
    """Seconds the raw replay of one example takes."""
    timeout = bounds.echo_timeout(sum(len(plan.payload) for plan in plans))
    started = time.perf_counter()
    replies = raw_exchange(address, plans, timeout)
    seconds = time.perf_counter() - started
    _check("raw", plans, replies)
    return seconds


def time_kit(server: ServedServer, plans: list[ClientPlan]) -> tuple[float, float]:
    """Seconds of the kit's exchange of one example, and of its handler reports."""
    timeout = bounds.echo_timeout(sum(len(plan.payload) for plan in plans))
    started = time.perf_counter()
    transcripts = stream.exchange(server.address, plans, timeout=timeout)
    exchanged = time.perf_counter()
    handlers = server.take_handlers(len(plans), until="finish",
                                    timeout=bounds.HANDLER_REPORT)
    reported = time.perf_counter()
    _check("kit", plans, [bytes(t.received) for t in transcripts])
    if len(handlers) != len(plans) or not all(h.has("finish") for h in handlers):
        raise RuntimeError(f"kit replay: {len(handlers)} of {len(plans)} handlers reported "
                           "finish()")
    return exchanged - started, reported - exchanged


def measure(examples: int) -> dict[str, Any]:
    """The figure: raw and kit milliseconds per example over the same plans, and their
    ratio (the kit's over the raw replay's)."""
    plans = echo_plans(examples)
    raw_seconds: list[float] = []
    kit_seconds: list[tuple[float, float]] = []
    raw_server = _RawServer(("127.0.0.1", 0), _DocumentedEcho)
    serving = threading.Thread(target=raw_server.serve_forever, daemon=True)
    serving.start()
    harness = Harness(Target())
    try:
        kit_server = harness.start(SERVER_CLASS, Echo())
        for index, example in enumerate(plans):
            # Alternate which side goes first, so neither always runs on a warmer machine.
            if index % 2:
                kit_seconds.append(time_kit(kit_server, example))
                raw_seconds.append(time_raw(raw_server.server_address, example))
            else:
                raw_seconds.append(time_raw(raw_server.server_address, example))
                kit_seconds.append(time_kit(kit_server, example))
        kit_server.stop()
    finally:
        harness.close()
        raw_server.shutdown()
        raw_server.server_close()
    return summarize(plans, raw_seconds, kit_seconds)


def summarize(plans: list[list[ClientPlan]], raw_seconds: list[float],
              kit_seconds: list[tuple[float, float]]) -> dict[str, Any]:
    count = len(plans)
    raw_ms = 1000 * sum(raw_seconds) / count
    exchange_ms = 1000 * sum(e for e, _ in kit_seconds) / count
    reports_ms = 1000 * sum(r for _, r in kit_seconds) / count
    kit_ms = exchange_ms + reports_ms
    ratio = kit_ms / raw_ms if raw_ms else None
    return {
        "server": SERVER_CLASS,
        "examples": count,
        "clients": sum(len(example) for example in plans),
        "payload_bytes": sum(len(plan.payload) for example in plans for plan in example),
        "raw_ms_per_example": round(raw_ms, 2),
        "kit_ms_per_example": round(kit_ms, 2),
        "kit_exchange_ms_per_example": round(exchange_ms, 2),
        "kit_handler_reports_ms_per_example": round(reports_ms, 2),
        "ratio": None if ratio is None else round(ratio, 2),
        "exchange_only_ratio": round(exchange_ms / raw_ms, 2) if raw_ms else None,
        "target_ratio": TARGET_RATIO,
        "per_example": [{"clients": len(example),
                         "bytes": sum(len(plan.payload) for plan in example),
                         "raw_ms": round(1000 * raw, 2),
                         "kit_exchange_ms": round(1000 * kit[0], 2),
                         "kit_reports_ms": round(1000 * kit[1], 2)}
                        for example, raw, kit in zip(plans, raw_seconds, kit_seconds)],
    }
