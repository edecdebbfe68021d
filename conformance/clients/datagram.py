"""Datagram clients: send one datagram and wait, boundedly, for the reply."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any


@dataclass
class DatagramReply:
    """The client's own address and the reply it received (None if none came in time)."""

    client_address: Any
    reply: bytes | None


def exchange(address: tuple[Any, ...], datagram: bytes, *, timeout: float) -> DatagramReply:
    """Send ``datagram`` from a fresh socket bound to loopback port 0 and read one reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        sock.sendto(datagram, address)
        try:
            reply, _ = sock.recvfrom(1 << 16)
        except socket.timeout:
            reply = None
        return DatagramReply(sock.getsockname(), reply)
