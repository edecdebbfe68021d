"""Client drivers: what the kit's side of a connection does, bounded in time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from conformance import bounds
from conformance.clients import datagram, stream
from conformance.strategies import ClientPlan, WritePattern


def round_trip(address: Any, payload: bytes, *, is_datagram: bool) -> Any:
    """One client sends ``payload`` (one datagram, or one write and a half-close) and reads
    the reply; returns the client's own address, as its socket reports it."""
    with staying_open(address, payload, is_datagram=is_datagram) as client_address:
        return client_address


@contextlib.contextmanager
def staying_open(address: Any, payload: bytes, *, is_datagram: bool) -> Iterator[Any]:
    """``round_trip``, with a stream client still connected inside the block (see
    ``stream.exchanging``). Yields the client's own address."""
    if is_datagram:
        yield datagram.exchange(address, payload, timeout=bounds.DATAGRAM_REPLY).client_address
        return
    with stream.exchanging(address, [ClientPlan(payload, WritePattern())],
                           timeout=bounds.echo_timeout(len(payload))) as (transcript,):
        yield transcript.client_address
