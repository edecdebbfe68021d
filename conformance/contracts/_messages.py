"""Failure-message helpers: show enough of a payload to act on, never megabytes of it."""

from __future__ import annotations

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
