"""How a stream conversation ends: the client half-closes, the handler sees b'' and returns.

Documentation, BaseRequestHandler: "setup() ... handle() ... finish(): Called after the
handle() method to perform any clean-up actions required." and, for the server,
"shutdown_request(): Called to shutdown and close an individual request." The
documentation's echo loop relies on ``recv`` returning an empty bytes object at EOF.

"The server closes the connection" is checked from both ends: the client reads EOF, and the
server's process (the parent, on forking servers) no longer holds a socket of it, so that
a long-running server does not accumulate descriptors.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import example, given

from conformance import bounds
from conformance.clients import stream
from conformance.contracts.catalog import DOCS, STREAM_SERVERS, contract
from conformance.harness import HANDLER_LIFECYCLE, ServedServer
from conformance.strategies import KIB, PART_LATE, ClientPlan, WritePattern, client_plans


@contract("eof.ends_handler", servers=STREAM_SERVERS,
          reference=DOCS + "#socketserver.BaseRequestHandler.finish", handler_side=True)
def test_eof_ends_handler(server: ServedServer) -> None:
    """After the client half-closes, the handler's recv() returns b'', handle() returns,
    finish() runs, the server closes the connection and the client reads EOF; there is one
    handler instance per connection and nothing of it is left running, and the server's
    process holds no socket of it."""

    @example(plan=ClientPlan(b"hello", WritePattern()))
    @example(plan=ClientPlan(b"hello", PART_LATE))
    @given(plan=client_plans(max_size=64 * KIB))
    def check(plan: ClientPlan) -> None:
        (transcript,) = stream.exchange(server.address, [plan], until_eof=True,
                                        timeout=bounds.EOF, watch=server.watch(closed=True))
        assert transcript.eof, (
            f"after half-closing, the client {transcript.describe()}: the server did not "
            "close the connection")
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers, f"no handler ran within {bounds.HANDLER_REPORT:g}s"
        extra = server.untaken()
        assert not extra, f"one connection made {1 + len(extra)} handler instances, not one"
        handler = handlers[0]
        assert handler.steps == HANDLER_LIFECYCLE, (
            f"the handler went through {handler.steps}, not {HANDLER_LIFECYCLE}")
        returned = handler.handle_return
        # A user's handler (--handler) only says that handle() returned; the reference
        # handler also says why.
        assert returned.ended_at_eof is not False, (
            f"handle() ended by {returned.ended_by}, not by recv() returning b''")
        deadline = time.monotonic() + bounds.HANDLER_EXIT
        while server.running([handler]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not server.running([handler]), (
            f"the handler's {handler.ran_in} is still running {bounds.HANDLER_EXIT:g}s "
            "after finish()")
        while _held(server) and time.monotonic() < deadline:
            time.sleep(0.02)
        held = _held(server)
        # "shutdown_request(): Called to shutdown and close an individual request."
        assert not held, (
            f"{bounds.HANDLER_EXIT:g}s after finish(), the server's process still holds "
            f"{len(held)} socket(s) of the finished connection: the request was not "
            "closed")

    check()


def _held(server: ServedServer) -> list[Any]:
    """The connections the server's process still holds: its sockets, the listening one
    aside, whose own address is the server's (an accepted connection has the address it
    was accepted on, whatever state it is in; the contract makes one at a time)."""
    return [name for name in server.held_sockets().stream_connections
            if name == server.address]
