"""DatagramRequestHandler: the file objects it gives handle().

Documentation, "Request Handler Objects": "These BaseRequestHandler subclasses override the
setup() and finish() methods, and provide rfile and wfile attributes." rfile: "A file object
from which receives the request is read. Support the io.BufferedIOBase readable interface."
wfile: "A file object to which the reply is written."

The handler under test is the harness's ``DatagramFile`` handler (a DatagramRequestHandler
echoing ``rfile.read()`` upper-cased through ``wfile``). That finish() sends wfile's
content even when handle() wrote nothing is stdlib code the documentation does not
describe: that contract is should-level.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import example, given

from conformance import bounds
from conformance.clients import datagram
from conformance.contracts._messages import difference, excerpt
from conformance.contracts.catalog import DATAGRAM_SERVERS, DOCS, SHOULD, SOURCE, contract
from conformance.harness import DatagramFile, ServedServer
from conformance.strategies import datagrams


@contract("datagram_handler.rfile_wfile", servers=DATAGRAM_SERVERS,
          reference=DOCS + "#socketserver.DatagramRequestHandler")
def test_datagram_handler_rfile_wfile(serve: Callable[..., ServedServer]) -> None:
    """In a DatagramRequestHandler, rfile reads exactly the (non-empty) datagram the client
    sent, and what handle() writes to wfile reaches the client as one datagram once the
    handler finishes."""
    server = serve(DatagramFile())

    @example(sent=b"hello")
    @example(sent=bytes(range(256)) * 8)
    # An empty reply is datagram_handler.empty_reply's business.
    @given(sent=datagrams().filter(bool))
    def check(sent: bytes) -> None:
        reply = datagram.exchange(server.address, sent, timeout=bounds.DATAGRAM_REPLY,
                                  watch=server.watch())
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        assert handlers and handlers[0].handle_returned, (
            f"no handler ran within {bounds.HANDLER_REPORT:g}s for a {len(sent)}-byte "
            "datagram")
        # rfile: "A file object from which receives the request is read."
        received = handlers[0].handle_return.received
        assert received == len(sent), (
            f"rfile.read() returned {received} bytes of the {len(sent)}-byte datagram")
        # wfile: "A file object to which the reply is written."
        echoed_right = reply.reply == sent.upper()
        assert echoed_right, (
            f"no reply reached the client {reply.waited}"
            if reply.reply is None
            else "the reply's first datagram: " + difference(reply.reply, sent.upper()))

    check()


@contract("datagram_handler.empty_reply", servers=DATAGRAM_SERVERS, reference=SOURCE,
          level=SHOULD)
def test_datagram_handler_empty_reply(serve: Callable[..., ServedServer]) -> None:
    """A DatagramRequestHandler whose handle() writes nothing to wfile still sends the
    client one empty datagram when it finishes."""
    server = serve(DatagramFile(silent=True))

    @example(sent=b"hello")
    @given(sent=datagrams())
    def check(sent: bytes) -> None:
        reply = datagram.exchange(server.address, sent, timeout=bounds.DATAGRAM_REPLY,
                                  watch=server.watch())
        server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        # finish(): "self.socket.sendto(self.wfile.getvalue(), self.client_address)"
        assert reply.reply == b"", (
            f"the client received no reply {reply.waited}, not an empty datagram"
            if reply.reply is None
            else f"the client received {excerpt(reply.reply)}, not an empty datagram")

    check()
