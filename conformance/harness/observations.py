"""What one handler instance reported, rebuilt from the agent's events."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any


def address(value: Any) -> Any:
    """An address as the agent sends it (lists for tuples), comparable with socket results."""
    if isinstance(value, list):
        return tuple(address(item) for item in value)
    return value


@dataclass
class Handler:
    """One handler instance: its uid, the events it reported in order, and the setup facts."""

    uid: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return [event["kind"] for event in self.events]

    def has(self, kind: str) -> bool:
        return kind in self.kinds

    def first(self, kind: str) -> dict[str, Any]:
        for event in self.events:
            if event["kind"] == kind:
                return event
        raise AssertionError(f"handler {self.uid} reported {self.kinds}: no {kind!r} among "
                             "them (a report lost, or a handler that skipped it)")

    @property
    def setup(self) -> dict[str, Any]:
        return self.first("setup")

    @property
    def request(self) -> dict[str, Any]:
        return dict(self.setup["request"])

    @property
    def client_address(self) -> Any:
        return address(self.setup["client_address"])

    @property
    def peer(self) -> Any:
        """The request socket's peer (TCP), independent of what client_address says."""
        return address(self.request.get("peername"))

    @property
    def datagram(self) -> bytes | None:
        data = self.request.get("data")
        return None if data is None else bytes.fromhex(data)

    @property
    def ran_in(self) -> str:
        setup = self.setup
        return f"pid {setup['pid']}, thread {setup['thread']!r}"


SERVER = "server"


def collect_handlers(events: list[dict[str, Any]]) -> list[Handler]:
    """Group events by handler instance, ordered by when each instance started."""
    handlers: dict[str, Handler] = {}
    for event in events:
        if event["handler"] == SERVER:
            continue
        handlers.setdefault(event["handler"], Handler(event["handler"])).events.append(event)
    return list(handlers.values())


def server_calls(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The server's own reported method calls (get_request, verify_request, ...), in order."""
    return [event for event in events if event["handler"] == SERVER]


SOCK_STREAM = int(socket.SOCK_STREAM)
SOCK_DGRAM = int(socket.SOCK_DGRAM)
