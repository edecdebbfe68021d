"""When a client stops waiting: at the bound of its wait, or soon after the server is done.

A client that waits for a reply or an EOF from a server that never sends one would wait out
its whole bound. Given a ``Watch`` (the harness's ``RequestWatch``), it asks now and then,
while nothing arrives, whether the server is done with its requests; once it is, nothing
more can come but what is already in flight, so the client reads on for
``bounds.AFTER_HANDLER_GRACE`` (longer while bytes keep arriving) and stops.
"""

from __future__ import annotations

import time
from typing import Protocol

from conformance import bounds


class Watch(Protocol):
    def served(self) -> bool:
        """Whether the server is done with the client's requests: nothing more will come."""


class Deadline:
    """The end of one client's wait: ``timeout`` seconds from now, or earlier, a grace
    period after ``watch`` says the server is done (never, without a watch): ``grace``
    seconds, by default ``bounds.AFTER_HANDLER_GRACE``."""

    def __init__(self, timeout: float, watch: Watch | None = None,
                 grace: float | None = None) -> None:
        now = time.monotonic()
        self._timeout = timeout
        self._grace = bounds.AFTER_HANDLER_GRACE if grace is None else grace
        self._bound = now + timeout
        self._watch = watch
        self._next_check = now + bounds.SERVED_CHECK
        self._grace_end: float | None = None

    @property
    def _end(self) -> float:
        if self._grace_end is None:
            return self._bound
        return min(self._bound, self._grace_end)

    def remaining(self) -> float:
        """How long the client may block before it looks again; 0 once its wait is over.
        Asks the watch when it is due."""
        now = time.monotonic()
        if self._watching and now >= self._next_check:
            assert self._watch is not None
            if self._watch.served():
                now = time.monotonic()
                self._grace_end = now + self._grace
            else:
                now = time.monotonic()
                self._next_check = now + bounds.SERVED_CHECK
        end = self._end
        if now >= end:
            return 0.0
        if self._watching:
            end = min(end, self._next_check)
        return end - now

    @property
    def over(self) -> bool:
        """Whether the wait has ended (without asking the watch)."""
        return time.monotonic() >= self._end

    def waited(self) -> str:
        """How long the client waited, in words that follow "nothing came": "within 3s",
        or, once the watch said the server was done, "in the 0.25s after the server was
        done with the request"."""
        if self._grace_end is None:
            return f"within {self._timeout:g}s"
        return f"in the {self._grace:g}s after the server was done with the request"

    def received(self) -> None:
        """Bytes arrived: the server still sends. Grace runs on from now; until the server
        is done, the watch is asked again only once the client has waited a while."""
        now = time.monotonic()
        if self._grace_end is not None:
            self._grace_end = max(self._grace_end, now + self._grace)
        else:
            self._next_check = now + bounds.SERVED_CHECK

    @property
    def _watching(self) -> bool:
        return self._watch is not None and self._grace_end is None
