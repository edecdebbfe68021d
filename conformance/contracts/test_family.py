"""Address families other than IPv4: IPv6 servers.

Documentation, BaseServer.address_family: "The family of protocols to which the server's
socket belongs." and server_address: "The format of addresses varies depending on the
protocol family; see the documentation for the socket module for details." For AF_INET6
the socket module's address is the 4-tuple (host, port, flowinfo, scope_id). An IPv6 server
is a server class with address_family = AF_INET6; the harness makes that subclass and binds
it to ::1.

Unix servers are held to the core contracts (request, handler, echo, eof, concurrency)
on their own server classes; only what is particular to a family lives here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance.contracts._kept_open import kept_open
from conformance.contracts.catalog import DOCS, INET_SERVERS, contract
from conformance.harness import ServedServer
from conformance.strategies import payloads

IPV6_LOOPBACK = "::1"


def _skip_without_ipv6_loopback() -> None:
    """Skip, saying why, when this machine cannot bind a socket to ::1."""
    if not socket.has_ipv6:
        pytest.skip("not applicable: this Python was built without IPv6 support")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind((IPV6_LOOPBACK, 0))
    except OSError as exc:
        pytest.skip(f"not applicable: the IPv6 loopback address {IPV6_LOOPBACK} is "
                    f"unavailable on this machine ({exc})")


@contract("family.inet6", servers=INET_SERVERS,
          reference=DOCS + "#socketserver.BaseServer.address_family")
def test_family_inet6(serve: Callable[..., ServedServer]) -> None:
    """A TCP or UDP server class with address_family = AF_INET6 serves on ::1, and its
    handlers' self.client_address has the IPv6 form, the 4-tuple (host, port, flowinfo,
    scope_id), with the host, flowinfo and scope_id the client's socket reports.

    That the port is the client's own, the same on every family, is
    handler.client_address's business; this contract is about the IPv6 form."""
    _skip_without_ipv6_loopback()
    server = serve(family="inet6")
    assert len(server.address) == 4 and server.address[0] == IPV6_LOOPBACK, (
        f"the IPv6 server's server_address is {server.address!r}, not a 4-tuple on "
        f"{IPV6_LOOPBACK}")

    with kept_open(server) as set_up:

        @example(payload=b"hello", clients=1)
        @given(payload=payloads(max_size=1024), clients=st.integers(1, 3))
        def check(payload: bytes, clients: int) -> None:
            for _ in range(clients):
                client_address, handler = set_up(payload)
                observed = handler.client_address
                # "The format of addresses varies depending on the protocol family"
                assert (isinstance(observed, tuple) and len(observed) == 4
                        and _without_port(observed) == _without_port(client_address)), (
                    f"self.client_address is {observed!r}, not the IPv6 form of the "
                    f"client's address {client_address!r}")

        check()


def _without_port(address: tuple[object, ...]) -> tuple[object, ...]:
    return (address[0], *address[2:])
