"""The wire log of the current example: what each client did, in order, with its time.

Clients record what they send and receive here; the log starts afresh with each Hypothesis
example, so when a contract fails it holds the last example run, which is the minimal
failing one (Hypothesis runs it again last). The plugin adds what the handlers reported in
the same span and attaches the whole to the failure's report as its transcript.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

# A log keeps at most this many entries, and shows at most this many bytes of each.
MAX_ENTRIES = 400
MAX_SHOWN = 120


@dataclass(frozen=True)
class Entry:
    """One thing that happened: when (seconds since the epoch), who did it ("client 2",
    "handler 1", "server"), what, and the bytes involved as Python shows them."""

    t: float
    who: str
    event: str
    data: str | None = None

    def to_json(self, start: float) -> dict[str, Any]:
        """As results.json records it: ``t`` in seconds since the example started."""
        return {**asdict(self), "t": round(self.t - start, 6)}


_log: list[Entry] = []
_example: list[object] = [None]


def record(who: str, event: str, data: bytes | None = None, *,
           at: float | None = None) -> None:
    """Add an entry to the current example's log, dated ``at`` (``time.time()``; default:
    now)."""
    example = _current_example()
    if example is not _example[0]:
        _example[0] = example
        _log.clear()
    if len(_log) < MAX_ENTRIES:
        _log.append(Entry(time.time() if at is None else at, who, event,
                          None if data is None else shown(data)))


def entries() -> list[Entry]:
    """The current example's log, in order."""
    return list(_log)


def clear() -> None:
    """Start a new log (a new test)."""
    _log.clear()
    _example[0] = None


def shown(data: bytes) -> str:
    """``data`` as Python shows bytes, cut to MAX_SHOWN bytes with the total length."""
    if len(data) <= MAX_SHOWN:
        return repr(data)
    return f"{data[:MAX_SHOWN]!r}... ({len(data)} bytes)"


def _current_example() -> object:
    # Each example Hypothesis runs has a build context of its own; outside @given, None.
    from hypothesis.control import current_build_context
    from hypothesis.errors import InvalidArgument

    try:
        return current_build_context()
    except InvalidArgument:
        return None
