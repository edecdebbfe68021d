"""Failure-message helpers: show enough of a payload to act on, never megabytes of it."""

from __future__ import annotations

from collections.abc import Iterable

from conformance.harness import ServerCall

EXCERPT = 48


def excerpt(data: bytes | bytearray) -> str:
    """``data``'s repr, shortened to its first bytes and its length when it is long."""
    data = bytes(data)
    if len(data) <= EXCERPT:
        return repr(data)
    return f"{data[:EXCERPT]!r}... ({len(data)} bytes)"


def difference(received: bytes | bytearray, expected: bytes) -> str:
    """Where ``received`` first departs from ``expected``, in words."""
    received = bytes(received)
    offset = next((i for i, (a, b) in enumerate(zip(received, expected)) if a != b),
                  min(len(received), len(expected)))
    return (f"received {len(received)} of {len(expected)} expected bytes; first difference "
            f"at offset {offset}: got {excerpt(received[offset:offset + EXCERPT])}, "
            f"expected {excerpt(expected[offset:offset + EXCERPT])}")


def calls_made(calls: Iterable[ServerCall]) -> str:
    """Calls as "get_request, ..., finish_request (pid 123)": the pid where it changes."""
    words, last_pid = [], None
    for call in calls:
        words.append(call.method + (f" (pid {call.pid})" if last_pid not in (None, call.pid)
                                    else ""))
        last_pid = call.pid
    return ", ".join(words) or "nothing"
