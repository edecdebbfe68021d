"""Hypothesis strategies for what clients send and how they send it.

Large payloads are built by tiling a small generated unit, so that a 1 MiB payload costs
Hypothesis a few bytes of entropy and still shrinks to something readable.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from itertools import cycle

from hypothesis import strategies as st

KIB = 1024
MIB = 1024 * KIB
# The reference handler reads 1024 bytes at a time: sizes on either side of a multiple of
# it split a payload, or a multi-byte character, across two recv() calls.
RECV_BOUNDARY = 1024
# Writes beyond this many chunks are sent as one final chunk, to bound a run's duration.
MAX_CHUNKS = 64
# Pauses are applied only before the first few chunks, for the same reason.
MAX_PAUSED_CHUNKS = 4
# The least pause between two writes of a split payload, in seconds.
WRITE_GAP = 0.002
# UDPServer.max_packet_size: larger datagrams are truncated by the stdlib.
MAX_PACKET_SIZE = 8192


def _tile(unit: bytes, size: int) -> bytes:
    return (unit * (size // len(unit) + 1))[:size]


def _tile_text(unit: str, count: int) -> bytes:
    return (unit * count).encode("utf-8")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


def binary_payloads(*, max_size: int = MIB) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes: short ones, ones sized around the recv boundary, large tiled ones."""
    units = st.binary(min_size=1, max_size=16)
    near_boundary = st.integers(1, 4).flatmap(
        lambda k: st.integers(k * RECV_BOUNDARY - 2, k * RECV_BOUNDARY + 2))
    return st.one_of(
        st.binary(max_size=min(64, max_size)),
        st.builds(_tile, units, near_boundary.filter(lambda n: n <= max_size)),
        st.builds(_tile, units, st.integers(0, max_size)),
    )


def text_payloads(*, max_size: int = MIB) -> st.SearchStrategy[bytes]:
    """UTF-8 encoded text, multi-byte characters included, up to about ``max_size`` bytes."""
    units = st.text(min_size=1, max_size=8)
    return st.one_of(
        st.text(max_size=min(64, max_size)).map(_utf8),
        st.builds(_tile_text, units, st.integers(0, max(0, max_size // 32))),
    )


# What clients send: "any" bytes (the default), or "text" only (UTF-8), for handlers of
# text protocols. Chosen once per run with --payloads.
PAYLOAD_KINDS = ("any", "text")
_payload_kind = "any"


def use_payloads(kind: str) -> None:
    """Choose what payloads() generates for this run: "any" or "text"."""
    global _payload_kind
    if kind not in PAYLOAD_KINDS:
        raise ValueError(f"payloads must be one of {PAYLOAD_KINDS}, not {kind!r}")
    _payload_kind = kind


def payloads(*, max_size: int = MIB) -> st.SearchStrategy[bytes]:
    """What a stream client may send: binary or UTF-8 text (only text after
    use_payloads("text")), empty to ``max_size`` bytes."""
    if _payload_kind == "text":
        return text_payloads(max_size=max_size)
    return st.one_of(binary_payloads(max_size=max_size), text_payloads(max_size=max_size))


def ascii_payloads(*, min_size: int = 0, max_size: int = 4 * KIB) -> st.SearchStrategy[bytes]:
    """Printable ASCII only: for scenarios about timing, where byte values are not the point
    (byte fidelity is echo.upper's business)."""
    units = st.text(alphabet=string.ascii_letters + string.digits + " ", min_size=1,
                    max_size=16).map(_utf8)
    return st.builds(_tile, units, st.integers(max(min_size, 0), max_size))


def datagrams(*, max_size: int = MAX_PACKET_SIZE) -> st.SearchStrategy[bytes]:
    """What a datagram client may send in one datagram, the empty datagram included."""
    return st.one_of(st.just(b""), binary_payloads(max_size=max_size),
                     text_payloads(max_size=max_size))


@dataclass(frozen=True)
class WritePattern:
    """How a client splits a payload into writes: chunk sizes (cycled) and the pauses, in
    seconds, before the first chunks. No sizes means one single write."""

    sizes: tuple[int, ...] = ()
    pauses: tuple[float, ...] = ()

    def chunks(self, payload: bytes) -> list[tuple[float, bytes]]:
        """(pause before, chunk) pairs that add up to ``payload``."""
        if not self.sizes:
            pieces = [payload]
        else:
            pieces = []
            offset = 0
            for size in cycle(self.sizes):
                if offset >= len(payload):
                    break
                if len(pieces) == MAX_CHUNKS - 1:
                    size = len(payload) - offset
                pieces.append(payload[offset:offset + size])
                offset += size
        pauses = list(self.pauses[:MAX_PAUSED_CHUNKS]) + [0.0] * len(pieces)
        # Every chunk after the first waits at least WRITE_GAP, so that separate writes
        # reach the handler as separate reads and a counterexample replays the same way.
        pauses = [pause if i == 0 else max(pause, WRITE_GAP) for i, pause in enumerate(pauses)]
        return list(zip(pauses, pieces))


# A request in one write.
ONE_WRITE = WritePattern()
# A request whose rest comes a moment after its first two bytes: by then the handler has
# read those and waits for more, a second wait for its client. Contracts whose handler
# reads a request to its end have an explicit example in this pattern, so that a server
# whose handlers cannot wait for their client (eventlet-green's starved green threads)
# fails them every run, not only when a handler happens to read before its request came.
PART_LATE = WritePattern(sizes=(2,), pauses=(0.0, 0.5))


def write_patterns() -> st.SearchStrategy[WritePattern]:
    """One write, many small writes, random splits, and splits with pauses between them."""
    pauses = st.lists(st.sampled_from([0.0, 0.001, 0.01, 0.05]), min_size=1,
                      max_size=MAX_PAUSED_CHUNKS).map(tuple)
    splits = st.lists(st.integers(1, 70 * KIB), min_size=1, max_size=6).map(tuple)
    return st.one_of(
        st.just(WritePattern()),
        st.builds(WritePattern, sizes=st.integers(1, 8).map(lambda n: (n,))),
        st.builds(WritePattern, sizes=splits),
        st.builds(WritePattern, sizes=splits, pauses=pauses),
    )


@dataclass(frozen=True)
class ClientPlan:
    """One client's payload and the way it writes it."""

    payload: bytes
    pattern: WritePattern

    def chunks(self) -> list[tuple[float, bytes]]:
        return self.pattern.chunks(self.payload)


def client_plans(*, max_size: int = MIB) -> st.SearchStrategy[ClientPlan]:
    """A payload together with a write pattern."""
    return st.builds(ClientPlan, payloads(max_size=max_size), write_patterns())


def concurrent_clients(*, max_clients: int = 4, max_size: int = MIB,
                       contents: st.SearchStrategy[bytes] | None = None,
                       ) -> st.SearchStrategy[list[ClientPlan]]:
    """Several clients at once, each with ``contents`` (default: payloads()) and a write
    pattern. Keep ``max_clients`` within the server's listen backlog (request_queue_size, 5
    by default): a larger burst can be refused by the kernel."""
    if contents is None:
        contents = payloads(max_size=max_size)
    plans = st.builds(ClientPlan, contents, write_patterns())
    return st.lists(plans, min_size=1, max_size=max_clients)


# The lines handler's commands: a line that starts with one is not echoed.
READ_COMMAND = b"read "
RAW_COMMAND = b"raw "
CLOSE_COMMAND = b"close"
LINE_COMMANDS = (READ_COMMAND, b"write ", RAW_COMMAND, CLOSE_COMMAND)


@dataclass(frozen=True)
class LineRequest:
    """One request of the ``lines`` handler's protocol: a line, which it echoes upper-cased,
    or (``is_block``) a ``read N`` line followed by a block of N arbitrary bytes, which it
    reads with ``rfile.read(N)`` and echoes upper-cased."""

    data: bytes
    is_block: bool = False

    def encode(self) -> bytes:
        """What the client sends for this request."""
        if self.is_block:
            return READ_COMMAND + str(len(self.data)).encode("ascii") + b"\n" + self.data
        return self.data + b"\n"

    def reply(self) -> bytes:
        """What the handler sends back for it."""
        return self.data.upper() if self.is_block else self.encode().upper()


@dataclass(frozen=True)
class RawRequest:
    """A ``raw TEXT`` line of the ``lines`` handler's protocol: the handler sends TEXT back
    as it is on the connection itself (sendall()), past wfile."""

    text: bytes

    def encode(self) -> bytes:
        """What the client sends for this request."""
        return RAW_COMMAND + self.text + b"\n"

    def reply(self) -> bytes:
        """What the handler sends back for it."""
        return self.text


@dataclass(frozen=True)
class CloseRequest:
    """The ``close`` line of the ``lines`` handler's protocol: the handler closes wfile and
    returns, sending nothing back."""

    def encode(self) -> bytes:
        """What the client sends for this request."""
        return CLOSE_COMMAND + b"\n"

    def reply(self) -> bytes:
        """What the handler sends back for it: nothing."""
        return b""


def _one_line(data: bytes) -> bytes:
    return data.replace(b"\n", b" ")


def line_requests(*, max_size: int = 16 * KIB,
                  blocks: bool = True) -> st.SearchStrategy[LineRequest]:
    """One request to the ``lines`` handler: a line (any bytes but a newline, never one of
    its commands) or, with ``blocks``, a block (any bytes at all), up to ``max_size``
    bytes."""
    lines = payloads(max_size=max_size).map(_one_line).filter(
        lambda line: not line.startswith(LINE_COMMANDS))
    requests = st.builds(LineRequest, lines)
    if blocks:
        requests |= st.builds(LineRequest, payloads(max_size=max_size), st.just(True))
    return requests


def line_scripts(*, min_requests: int = 1, max_requests: int = 6, max_size: int = 16 * KIB,
                 blocks: bool = True) -> st.SearchStrategy[list[LineRequest]]:
    """What a client of the ``lines`` handler sends: ``line_requests()``, in order."""
    return st.lists(line_requests(max_size=max_size, blocks=blocks), min_size=min_requests,
                    max_size=max_requests)


def raw_requests(*, max_size: int = 64) -> st.SearchStrategy[RawRequest]:
    """``raw`` lines to the ``lines`` handler: TEXT of 1 to ``max_size`` bytes, any but a
    newline."""
    return st.builds(RawRequest, payloads(max_size=max_size).filter(bool).map(_one_line))
