"""StreamRequestHandler: the file objects it gives handle(), and the connection it sets up.

Documentation, "Request Handler Objects": "These BaseRequestHandler subclasses override the
setup() and finish() methods, and provide rfile and wfile attributes." rfile: "A file object
from which receives the request is read. Support the io.BufferedIOBase readable interface."
wfile: "A file object to which the reply is written."

The handler under test is the harness's ``Lines`` handler (a StreamRequestHandler echoing
each line upper-cased; a ``read N`` line makes it read exactly N more bytes with
``rfile.read(N)`` and echo those; a ``write N TEXT`` line makes it send N bytes of TEXT
repeated, upper-cased, with one ``wfile.write()``; a ``raw TEXT`` line makes it send TEXT
as it is with ``self.request.sendall()``, past wfile; a ``close`` line makes it close
wfile and return).

What StreamRequestHandler does beyond that (wbufsize, timeout, disable_nagle_algorithm,
finish() flushing and closing both files, wfile.fileno()) is stdlib code the documentation
does not describe: those contracts are should-level.
"""

from __future__ import annotations

import contextlib
import socket
import string
import time
from collections.abc import Callable, Sequence
from typing import Union

from hypothesis import example, given
from hypothesis import strategies as st

from conformance import bounds
from conformance.clients import stream
from conformance.contracts._messages import difference, excerpt
from conformance.contracts.catalog import (
    DOCS,
    SHOULD,
    SOURCE,
    STREAM_SERVERS,
    TCP_SERVERS,
    contract,
)
from conformance.harness import Handler, Lines, ServedServer
from conformance.profiles import for_slow_scenarios
from conformance.strategies import (
    KIB,
    ONE_WRITE,
    CloseRequest,
    LineRequest,
    RawRequest,
    WritePattern,
    line_requests,
    line_scripts,
    raw_requests,
    write_patterns,
)

HANDLERS_DOC = DOCS + "#socketserver.StreamRequestHandler"
# type(exc).__name__ of socket.timeout: an alias of TimeoutError since 3.10.
TIMEOUT_ERRORS = ("timeout", "TimeoutError")
# The first line of b"hello\n", then the rest of the script a moment later.
SECOND_LINE_LATE = WritePattern(sizes=(len(b"hello\n"),), pauses=(0.0, 0.2))
# wfile_writes_all: the SO_SNDBUF of the handler's connection (the kernel doubles it), and
# how long the client waits before it starts reading the reply, so that the reply fills
# the connection and a write() that gives up on a full buffer shows.
SMALL_SNDBUF = 4 * KIB
SLOW_READER = 0.2
# ... and the timeout that puts the connection's socket in timeout mode, where one send()
# may take only part of the data.
WRITE_TIMEOUT = 5.0
# The wbufsize of the handlers whose wfile buffers: more than the replies a check has them
# write to it, so that wfile holds them all until finish().
WBUFSIZE = 64 * KIB
# The wbufsize that asks makefile() for a buffer of the default size.
DEFAULT_WBUFSIZE = -1
# What a handler with a buffered wfile sends past it, once it has written to wfile: no
# reply written to wfile holds a lower-case ASCII letter, so none ends with this.
WRITTEN_MARK = RawRequest(b"written")

Request = Union[LineRequest, RawRequest, CloseRequest]


def _talk(server: ServedServer, script: Sequence[Request],
          pattern: WritePattern = ONE_WRITE, *, expected: bytes | None = None,
          ) -> tuple[stream.Transcript, Handler | None]:
    """Send the whole script in ``pattern``, half-close, read every reply byte the script
    asks for (``expected``: by default, each request's reply in order), then wait for the
    handler's finish() before closing. The client does not wait for EOF: closing the
    connection is eof.ends_handler's business."""
    sent = b"".join(request.encode() for request in script)
    if expected is None:
        expected = b"".join(request.reply() for request in script)
    watch = server.watch()
    client = stream.StreamClient(server.address, pattern.chunks(sent), expect=len(expected),
                                 until_eof=False)
    try:
        (transcript,) = stream.run_clients([client], timeout=bounds.echo_timeout(len(sent)),
                                           watch=watch)
        # Open until then: a handler's last (empty) write must not meet a closed peer.
        handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
    finally:
        client.close()
    return transcript, (handlers[0] if handlers else None)


def _finished(handler: Handler | None) -> Handler:
    assert handler is not None and handler.finished, (
        f"the handler did not reach finish() within {bounds.HANDLER_REPORT:g}s of the "
        "client's half-close" + (f" (it went through {handler.steps})" if handler else ""))
    return handler


@contract("stream_handler.rfile_reads", servers=STREAM_SERVERS, reference=HANDLERS_DOC)
def test_stream_handler_rfile_reads(serve: Callable[..., ServedServer]) -> None:
    """In a StreamRequestHandler, rfile.readline() returns exactly the lines the client sent
    and rfile.read(N) exactly the next N bytes, however the client splits its writes."""
    server = serve(Lines())

    @example(script=[LineRequest(b"hello")], pattern=WritePattern())
    @example(script=[LineRequest(b"hello"), LineRequest(b"abc\ndef", is_block=True)],
             pattern=WritePattern(sizes=(17,), pauses=(0.0, 0.2)))
    @given(script=line_scripts(max_size=64 * KIB), pattern=write_patterns())
    def check(script: list[LineRequest], pattern: WritePattern) -> None:
        transcript, handler = _talk(server, script, pattern)
        handler = _finished(handler)
        assert handler.handle_returned, (
            f"the handler's handle() raised {handler.handle_error.error} "
            "instead of reading the client's requests to EOF")
        returned = handler.handle_return
        # rfile supports "the io.BufferedIOBase readable interface": read(size) returns
        # size bytes unless EOF comes first, however many raw reads that takes.
        assert not returned.short_reads, (
            "rfile.read(N) returned fewer bytes than asked, with more on the way: "
            + ", ".join(f"read({short.asked}) returned {short.got}"
                        for short in returned.short_reads))
        assert returned.lines == len(script), (
            f"rfile.readline() returned {returned.lines} lines for the {len(script)} "
            "lines the client sent")
        expected = b"".join(request.reply() for request in script)
        # A name, not the comparison: pytest would diff the bytes (see test_echo).
        replied = transcript.received == expected
        assert replied, difference(transcript.received, expected)

    check()


@contract("stream_handler.wfile_unbuffered", servers=STREAM_SERVERS, reference=SOURCE,
          level=SHOULD)
def test_stream_handler_wfile_unbuffered(serve: Callable[..., ServedServer]) -> None:
    """A StreamRequestHandler's wfile is unbuffered by default (wbufsize = 0): what handle()
    writes reaches the client without flush(), so a client that sends a line and waits for
    the reply before sending the next is answered every time."""
    server = serve(Lines())

    @example(script=[LineRequest(b"hello"), LineRequest(b"again")])
    # A one-byte reply: held back by a writer with any buffer at all.
    @example(script=[LineRequest(b""), LineRequest(b"")])
    @given(script=line_scripts(max_requests=4, max_size=4 * KIB))
    def check(script: list[LineRequest]) -> None:
        # The handler ends only if something goes wrong: the client never half-closes.
        watch = server.watch()
        with contextlib.closing(stream.connect(server.address)) as sock:
            for number, request in enumerate(script, 1):
                sock.sendall(request.encode())
                expected = request.reply()
                reply = stream.recv_exactly(sock, len(expected), timeout=bounds.LINE_REPLY,
                                            watch=watch)
                # wbufsize = 0: "we make wfile unbuffered because (a) often after a
                # write() we want to read and we need to flush the line"
                echoed_right = reply == expected
                assert echoed_right, (
                    f"request {number} of {len(script)}, {excerpt(request.encode())}: " + (
                        f"the client received no reply within {bounds.LINE_REPLY:g}s (or "
                        "before the handler ended): what handle() wrote to wfile was held "
                        "back" if not reply else difference(reply, expected)))
        server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)

    check()


@contract("stream_handler.wfile_writes_all", servers=STREAM_SERVERS, reference=HANDLERS_DOC,
          since=(3, 6))
def test_stream_handler_wfile_writes_all(serve: Callable[..., ServedServer]) -> None:
    """A StreamRequestHandler's wfile has the io.BufferedIOBase writable interface (3.6+):
    writable() is true, and write(b) sends all of b and returns len(b), even on a connection
    with a timeout to a client slow to read."""
    server = serve(Lines(attrs={"timeout": WRITE_TIMEOUT}, send_buffer=SMALL_SNDBUF))

    @for_slow_scenarios()
    @example(size=256 * KIB, text="x")
    @given(size=st.integers(128 * KIB, 1024 * KIB),
           text=st.text(string.ascii_letters + string.digits, min_size=1, max_size=16))
    def check(size: int, text: str) -> None:
        # "write N TEXT": the handler sends N bytes of TEXT repeated, upper-cased, with one
        # wfile.write().
        expected = (text * (size // len(text) + 1))[:size].upper().encode("ascii")
        watch = server.watch()
        with contextlib.closing(stream.connect(server.address)) as sock:
            sock.sendall(f"write {size} {text}\n".encode("ascii"))
            # Half-closed: whatever a buffering wfile holds back is flushed by finish().
            sock.shutdown(socket.SHUT_WR)
            time.sleep(SLOW_READER)
            received = stream.recv_exactly(sock, len(expected), timeout=bounds.LINE_REPLY,
                                           watch=watch)
            handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
        returned = _finished(handlers[0] if handlers else None).handle_return
        # wfile: "Changed in version 3.6: StreamRequestHandler.wfile also supports the
        # io.BufferedIOBase writable interface." BufferedIOBase.write(b) returns "always
        # equal to the length of b in bytes, since if the write fails an OSError will be
        # raised".
        assert returned.wfile_writable is True, (
            f"wfile.writable() gave {returned.wfile_writable!r}, not True")
        assert not returned.short_writes, (
            "wfile.write(b) did not write all of b: " + ", ".join(
                f"write() of {short.length} bytes returned {short.written!r}"
                for short in returned.short_writes))
        echoed_right = received == expected
        assert echoed_right, (
            f"{size} bytes written with one wfile.write(): " + difference(received, expected))

    check()


@contract("stream_handler.timeout", servers=STREAM_SERVERS, reference=SOURCE, level=SHOULD)
def test_stream_handler_timeout(serve: Callable[..., ServedServer]) -> None:
    """A StreamRequestHandler's timeout attribute becomes the connection's timeout in
    setup(): once the client has been silent that long, the handler's pending rfile read
    raises socket.timeout, and not sooner."""
    timeout = bounds.STREAM_HANDLER_TIMEOUT
    server = serve(Lines(attrs={"timeout": timeout}))

    @for_slow_scenarios()
    @example(script=[LineRequest(b"hello")])
    @given(script=line_scripts(min_requests=0, max_requests=3, max_size=KIB))
    def check(script: list[LineRequest]) -> None:
        since = len(server.calls())
        connecting = time.time()
        with contextlib.closing(stream.connect(server.address)) as sock:
            # Taken before sending: the handler's last wait cannot start any earlier. With
            # nothing to send, its wait may start as soon as the connection is accepted,
            # before this client runs again: then the time before connecting.
            silent_since = time.time() if script else connecting
            sock.sendall(b"".join(request.encode() for request in script))
            handlers = server.take_handlers(1, until="finish",
                                            timeout=timeout + bounds.HANDLER_REPORT)
            # Connected until the server is done with the request (shutdown_request() is
            # its last call), so that handling the timeout never meets a closed client.
            server.wait_for_calls("shutdown_request", 1, since=since,
                                  timeout=bounds.HANDLER_REPORT)
        assert handlers and handlers[0].setup_returned, (
            f"no handler finished setup() within {bounds.HANDLER_REPORT:g}s")
        handler = handlers[0]
        # "A timeout to apply to the request socket, if not None."
        applied = handler.after_setup.timeout
        assert applied == timeout, (
            f"after setup(), self.request.gettimeout() is {applied!r}, not the handler "
            f"class's timeout, {timeout!r}")
        assert handler.handle_raised, (
            f"the client was silent for {timeout + bounds.HANDLER_REPORT:g}s and the "
            f"handler's rfile read did not time out (it went through {handler.steps})")
        raised = handler.handle_error
        assert raised.error_type in TIMEOUT_ERRORS, (
            f"the handler's rfile read raised {raised.error}, not socket.timeout")
        waited = raised.time - silent_since
        assert waited >= timeout - bounds.TIMEOUT_SLACK, (
            f"the handler's rfile read timed out {waited:.3f}s after the client's last "
            f"{'write began' if script else 'connect() began'}, before the {timeout:g}s "
            "timeout")

    check()


@contract("stream_handler.nodelay", servers=TCP_SERVERS, reference=SOURCE, level=SHOULD)
def test_stream_handler_nodelay(serve: Callable[..., ServedServer]) -> None:
    """disable_nagle_algorithm is False by default, which leaves TCP_NODELAY off; set to
    True, a StreamRequestHandler's setup() sets TCP_NODELAY on the connection."""
    _, handler = _talk(serve(Lines()), [LineRequest(b"hello")])
    # disable_nagle_algorithm = False
    nodelay = _finished(handler).after_setup.nodelay
    assert nodelay is False, (
        f"after setup(), TCP_NODELAY on self.request is {nodelay!r}, although "
        "disable_nagle_algorithm is False by default")
    server = serve(Lines(attrs={"disable_nagle_algorithm": True}))

    @example(script=[LineRequest(b"hello")], pattern=ONE_WRITE)
    # The handler has replied before the rest of the script arrives: it waits for its
    # client a second time.
    @example(script=[LineRequest(b"hello"), LineRequest(b"again")], pattern=SECOND_LINE_LATE)
    @given(script=line_scripts(max_size=4 * KIB, blocks=False), pattern=st.just(ONE_WRITE))
    def check(script: list[LineRequest], pattern: WritePattern) -> None:
        _, handler = _talk(server, script, pattern)
        # "Disable nagle algorithm for this socket, if True."
        nodelay = _finished(handler).after_setup.nodelay
        assert nodelay is True, (
            f"after setup(), TCP_NODELAY on self.request is {nodelay!r}, although the "
            "handler class sets disable_nagle_algorithm = True")

    check()


@contract("stream_handler.files_closed", servers=STREAM_SERVERS, reference=SOURCE,
          level=SHOULD)
def test_stream_handler_files_closed(serve: Callable[..., ServedServer]) -> None:
    """A StreamRequestHandler's finish() closes both rfile and wfile."""
    server = serve(Lines())

    @example(script=[LineRequest(b"hello")], pattern=ONE_WRITE)
    # The handler has replied before the rest of the script arrives: it waits for its
    # client a second time.
    @example(script=[LineRequest(b"hello"), LineRequest(b"again")], pattern=SECOND_LINE_LATE)
    @given(script=line_scripts(max_size=4 * KIB, blocks=False), pattern=st.just(ONE_WRITE))
    def check(script: list[LineRequest], pattern: WritePattern) -> None:
        _, handler = _talk(server, script, pattern)
        finish = _finished(handler).finish
        left_open = [name for name, closed in (("rfile", finish.rfile_closed),
                                               ("wfile", finish.wfile_closed)) if not closed]
        # finish(): "self.wfile.close()" and "self.rfile.close()"
        assert not left_open, (
            f"after finish(), {' and '.join(left_open)} "
            f"{'is' if len(left_open) == 1 else 'are'} still open")

    check()


@contract("stream_handler.wbufsize_buffers", servers=STREAM_SERVERS, reference=SOURCE,
          level=SHOULD)
def test_stream_handler_wbufsize_buffers(serve: Callable[..., ServedServer]) -> None:
    """A StreamRequestHandler whose class sets wbufsize > 0, or -1 for the default size,
    gets a buffered wfile: what handle() writes to it is held until finish() flushes it,
    so bytes the handler sends on the connection itself after writing them reach the
    client first."""
    server = serve(Lines(attrs={"wbufsize": WBUFSIZE}))

    @example(script=[LineRequest(b"hello"), RawRequest(b"x")], pattern=ONE_WRITE)
    # The handler has written to wfile before the rest of the script arrives: it waits for
    # its client a second time.
    @example(script=[LineRequest(b"hello"), RawRequest(b"x")], pattern=SECOND_LINE_LATE)
    @given(script=st.lists(line_requests(max_size=KIB) | raw_requests(), min_size=1,
                           max_size=8),
           pattern=st.just(ONE_WRITE))
    def check(script: list[LineRequest | RawRequest], pattern: WritePattern) -> None:
        # At most 8 replies of KIB + 1 bytes go to wfile: WBUFSIZE holds them all.
        _check_held_until_finish(server, script, WBUFSIZE, pattern)

    check()
    # -1: "self.connection.makefile('wb', -1)", a buffer of the default size, which holds
    # this short reply too.
    _check_held_until_finish(serve(Lines(attrs={"wbufsize": DEFAULT_WBUFSIZE})),
                             [LineRequest(b"hello"), RawRequest(b"x")], DEFAULT_WBUFSIZE)


def _check_held_until_finish(server: ServedServer, script: list[LineRequest | RawRequest],
                             wbufsize: int, pattern: WritePattern = ONE_WRITE) -> None:
    past_wfile = b"".join(r.reply() for r in script if isinstance(r, RawRequest))
    through_wfile = b"".join(r.reply() for r in script if isinstance(r, LineRequest))
    expected = past_wfile + through_wfile
    transcript, handler = _talk(server, script, pattern, expected=expected)
    _finished(handler)
    # setup(): "self.wfile = self.connection.makefile('wb', self.wbufsize)" unless wbufsize
    # is 0, and finish() flushes it.
    replied = transcript.received == expected
    unbuffered = transcript.received == b"".join(r.reply() for r in script)
    assert replied, (
        f"with wbufsize = {wbufsize}, the client received every reply in the order the "
        "handler made them: what handle() wrote to wfile was not held until finish()"
        if unbuffered else difference(transcript.received, expected))


@contract("stream_handler.finish_after_wfile_closed", servers=STREAM_SERVERS,
          reference=SOURCE, level=SHOULD)
def test_stream_handler_finish_after_wfile_closed(
        serve: Callable[..., ServedServer]) -> None:
    """A StreamRequestHandler's handle() may close wfile itself: finish() then skips the
    final flush and returns without raising."""
    server = serve(Lines())

    @example(script=[LineRequest(b"hello")], pattern=ONE_WRITE)
    # The handler has replied before the rest of the script arrives: it waits for its
    # client a second time.
    @example(script=[LineRequest(b"hello")], pattern=SECOND_LINE_LATE)
    @given(script=line_scripts(min_requests=0, max_requests=3, max_size=4 * KIB,
                               blocks=False), pattern=st.just(ONE_WRITE))
    def check(script: list[LineRequest], pattern: WritePattern) -> None:
        _, handler = _talk(server, [*script, CloseRequest()], pattern)
        handler = _finished(handler)
        assert handler.handle_returned, (
            f"the handler's handle() raised {handler.handle_error.error} before or while "
            "closing wfile")
        # finish(): "if not self.wfile.closed:" around the flush.
        raised = handler.finish_error
        assert raised is None, (
            f"finish() raised {raised.error} after handle() had closed wfile, instead of "
            "skipping the flush of a closed file")

    check()


@contract("stream_handler.finish_ignores_flush_error", servers=STREAM_SERVERS,
          reference=SOURCE, level=SHOULD)
def test_stream_handler_finish_ignores_flush_error(
        serve: Callable[..., ServedServer]) -> None:
    """When finish()'s flush of a buffered wfile (wbufsize > 0) fails with a socket error
    because the client has gone, finish() goes on and closes wfile.

    The client resets the connection (a Unix client just closes it) once the handler has
    written its replies to wfile, so that the flush meets EPIPE. finish() may still raise:
    wfile.close() flushes again, and the stdlib's BufferedWriter then raises the same
    error, having closed the file; that is not held against it.

    The reset makes the handler raise, so the server's handle_error() runs: whether the
    server lives through that is stream.client_patterns' to check, so each example has a
    server of its own."""

    @example(script=[LineRequest(b"hello")])
    @given(script=line_scripts(max_requests=4, max_size=KIB, blocks=False))
    def check(script: list[LineRequest]) -> None:
        server = serve(Lines(attrs={"wbufsize": WBUFSIZE}))
        try:
            _reset_after_replies(server, script)
        finally:
            server.stop()

    check()


def _reset_after_replies(server: ServedServer, script: list[LineRequest]) -> None:
    """Send the script and a mark, read until the mark's reply, reset the connection, and
    check that finish() closed wfile although its flush met the reset."""
    # Each line's reply is one byte or more: wfile holds something to flush.
    sent = b"".join(r.encode() for r in [*script, WRITTEN_MARK])
    watch = server.watch()
    with contextlib.closing(stream.connect(server.address)) as sock:
        sock.sendall(sent)
        # Sent past wfile after the replies went to it: once it is here, the handler has
        # nothing left to do but read on. (Read until what came ends with it, whether
        # wfile held the replies or let them through.)
        received = b""
        deadline = time.monotonic() + bounds.LINE_REPLY
        while not received.endswith(WRITTEN_MARK.reply()):
            more = stream.recv_exactly(sock, 1, timeout=deadline - time.monotonic(),
                                       watch=watch)
            if not more:
                break
            received += more
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, stream.RESET_ON_CLOSE)
    handlers = server.take_handlers(1, until="finish", timeout=bounds.HANDLER_REPORT)
    handler = _finished(handlers[0] if handlers else None)
    # finish(): "try: self.wfile.flush() except socket.error: pass", then
    # "self.wfile.close()".
    raised = handler.finish_error
    assert handler.finish.wfile_closed, (
        "finish()'s flush of wfile met a socket error (the client had gone) and wfile "
        "was left open: "
        + (f"finish() raised {raised.error} before closing it" if raised else
           "finish() returned without closing it"))


@contract("stream_handler.wfile_fileno", servers=STREAM_SERVERS, reference=SOURCE,
          level=SHOULD)
def test_stream_handler_wfile_fileno(serve: Callable[..., ServedServer]) -> None:
    """A StreamRequestHandler's wfile.fileno() is the connection's file descriptor, with
    the default unbuffered wfile as with a buffered one (wbufsize > 0), so that select()
    can wait on wfile."""
    for wbufsize in (0, WBUFSIZE):
        server = serve(Lines(attrs={"wbufsize": wbufsize}))
        # The handler has replied before the second line arrives: it waits for its client
        # a second time.
        _, handler = _talk(server, [LineRequest(b"hello"), LineRequest(b"again")],
                           SECOND_LINE_LATE)
        facts = _finished(handler).after_setup
        # _SocketWriter: "def fileno(self): return self._sock.fileno()"
        assert facts.wfile_fileno is not None and facts.wfile_fileno == facts.connection_fileno, (
            f"with wbufsize = {wbufsize}, wfile.fileno() "
            + (f"raised {facts.wfile_fileno_error}" if facts.wfile_fileno is None else
               f"returned {facts.wfile_fileno!r}")
            + f", not the connection's file descriptor, {facts.connection_fileno!r}")
