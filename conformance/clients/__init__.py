"""Client drivers: what the kit's side of a connection does, bounded in time."""

from __future__ import annotations

from typing import Any

from conformance import bounds
from conformance.clients import datagram, stream
from conformance.strategies import ClientPlan, WritePattern


def round_trip(address: Any, payload: bytes, *, is_datagram: bool) -> Any:
    """One client sends ``payload`` (one datagram, or one write and a half-close) and reads
    the reply; returns the client's own address, as its socket reports it."""
    if is_datagram:
        return datagram.exchange(address, payload, timeout=bounds.DATAGRAM_REPLY).client_address
    (transcript,) = stream.exchange(address, [ClientPlan(payload, WritePattern())],
                                    timeout=bounds.echo_timeout(len(payload)))
    return transcript.client_address
