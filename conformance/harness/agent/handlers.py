"""The handlers the kit asks for: a kind (the body of handle()) and options, on a handler
base class of the implementation under test, reporting what each instance observes.

Kinds: "echo", "udp-echo", "lines", "datagram-file", "idle", "default" (handle() is
BaseRequestHandler's own), and "user" (the user's own handler class, ``class``:
"module:Class"). Options (all optional):
  raise_in        "setup" or "handle": raise ``raise`` ("Exception", "KeyboardInterrupt",
                  "SystemExit") there
  sleep           seconds to sleep at the start of handle(); with ``sleep_prefix``, only
                  for the datagrams that start with that (ASCII) text
  shutdown_server handle() calls self.server.shutdown(); "started": shutdown() of the
                  server the kit started, whatever self.server is
  mark_server     handle() sets an attribute (conformance_mark) on self.server
  silent          the "datagram-file" handler sends nothing back
  sndbuf          SO_SNDBUF of the connection, set before the base class's setup()
  attrs           class attributes such as timeout, disable_nagle_algorithm, wbufsize
Events, in the order of a handler's life: "setup", "setup-done" (stream and datagram
handlers), "handle", "shutdown-returned", "handle-returned" or "handle-raised", "finish"
(with the error, when the base class's finish() raised); or "setup", "setup-raised" for a
handler whose setup() raised.
"""

import os
import socket
import time

from .inspection import describe_request, request_socket, stream_file_facts, type_name
from .loading import import_attribute
from .protocol import jsonable

# The reference handler reads in 1024-byte steps, as the socketserver documentation's
# example does; payloads around this size are the interesting ones.
RECV_SIZE = 1024
# The base classes that give a handler rfile and wfile.
FILE_BASES = ("StreamRequestHandler", "DatagramRequestHandler")


def _stream_echo(handler):
    received = 0
    recvs = 0
    while True:
        data = handler.request.recv(RECV_SIZE)
        recvs += 1
        if not data:
            return {"received": received, "recvs": recvs, "ended_by": "eof"}
        received += len(data)
        handler.request.sendall(data.upper())


def _datagram_echo(handler):
    data, sock = handler.request
    sock.sendto(data.upper(), handler.client_address)
    return {"received": len(data), "recvs": 1, "ended_by": "datagram"}


class _LineSession(object):
    """One request of the lines handler: its answers to lines other than ``close``, and
    what it counts on the way."""

    def __init__(self, handler):
        self.handler = handler
        self.lines = 0
        # [asked, got] for every rfile.read(N) that returned other than N bytes
        self.short_reads = []
        # [length, returned] for every wfile.write(b) that returned other than len(b)
        self.short_writes = []
        try:
            self.writable = bool(handler.wfile.writable())
        except Exception as exc:
            self.writable = repr(exc)

    def write(self, data):
        written = self.handler.wfile.write(data)
        if written != len(data):
            self.short_writes.append([len(data), written])

    def answer(self, line):
        if line.startswith(b"raw "):
            self.handler.request.sendall(line[4:].rstrip(b"\n"))
        elif line.startswith(b"read "):
            wanted = int(line[5:])
            block = self.handler.rfile.read(wanted)
            if len(block) != wanted:
                self.short_reads.append([wanted, len(block)])
            self.write(block.upper())
        elif line.startswith(b"write "):
            size, text = line[6:].rstrip(b"\n").split(b" ", 1)
            self.write((text * (int(size) // len(text) + 1))[:int(size)].upper())
        else:
            self.write(line.upper())

    def ended(self, by):
        return {"lines": self.lines, "short_reads": self.short_reads,
                "short_writes": self.short_writes, "wfile_writable": self.writable,
                "ended_by": by}


def _line_echo(handler):
    """StreamRequestHandler: each line comes back upper-cased; a line ``read N`` makes the
    handler read exactly N more bytes with rfile.read(N) and send those back upper-cased;
    a line ``write N TEXT`` makes it send N bytes of TEXT repeated, upper-cased, with one
    wfile.write(); a line ``raw TEXT`` makes it send TEXT as it is on the connection
    itself (sendall(), past wfile); a line ``close`` makes it close wfile and return."""
    session = _LineSession(handler)
    while True:
        line = handler.rfile.readline()
        if not line:
            return session.ended("eof")
        session.lines += 1
        if line == b"close\n":
            handler.wfile.close()
            return session.ended("wfile-closed")
        session.answer(line)


def _datagram_file_echo(handler):
    """DatagramRequestHandler: rfile holds the datagram; wfile is sent back at finish()."""
    data = handler.rfile.read()
    if not handler.conformance_options.get("silent"):
        handler.wfile.write(data.upper())
    return {"received": len(data), "ended_by": "datagram"}


def _idle(handler):
    return {"ended_by": "idle"}


def _base_handle(handler):
    """BaseRequestHandler's own handle(): the class after the observing one in the MRO."""
    super(type(handler), handler).handle()
    return {"ended_by": "returned"}


# name -> (handler base class in the implementation, body)
HANDLER_KINDS = {
    "echo": ("BaseRequestHandler", _stream_echo),
    "udp-echo": ("BaseRequestHandler", _datagram_echo),
    "lines": ("StreamRequestHandler", _line_echo),
    "datagram-file": ("DatagramRequestHandler", _datagram_file_echo),
    "idle": ("BaseRequestHandler", _idle),
    "default": ("BaseRequestHandler", _base_handle),
}


class HandlerRaised(Exception):
    """What a handler raises when the kit asks it to raise an Exception."""


def _raise(kind):
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt("raised by the conformance handler")
    if kind == "SystemExit":
        raise SystemExit(3)
    raise HandlerRaised("raised by the conformance handler")


def _sleeps_over(request, options):
    """Whether the ``sleep`` option applies to this request: always, unless
    ``sleep_prefix`` restricts it to the datagrams that start with that (ASCII) text."""
    prefix = options.get("sleep_prefix")
    if prefix is None:
        return True
    data = request[0] if isinstance(request, (tuple, list)) and request else b""
    return isinstance(data, (bytes, bytearray)) and bytes(data).startswith(
        prefix.encode("ascii"))


def _user_handle(user_class):
    """The body for a user's own handler (kind "user"): its handle(), as it is written."""

    def body(handler):
        user_class.handle(handler)
        return {"ended_by": "returned"}

    return body


def user_handler_kind(user_class):
    """"stream" or "datagram" by the handler's documented base class, else "base"."""
    names = [cls.__name__ for cls in getattr(user_class, "__mro__", ())]
    if "handle" not in dir(user_class):
        raise TypeError("%r has no handle() method" % (user_class,))
    if "StreamRequestHandler" in names:
        return "stream"
    if "DatagramRequestHandler" in names:
        return "datagram"
    return "base"


def _base_and_body(module, kind, options):
    """(base class name, base class, body of handle()) for a handler kind."""
    if kind == "user":
        base = import_attribute(options["class"])
        return "user", base, _user_handle(base)
    base_name, body = HANDLER_KINDS[kind]
    return base_name, getattr(module, base_name), body


class _Observer(object):
    """What the handlers of one server report, and the options they act on."""

    def __init__(self, options, server_id, servers, reporter):
        self.options = options
        self.server_id = server_id
        # server id -> server instance, for the servers the agent started and still runs
        self.servers = servers
        self.reporter = reporter

    def emit(self, handler, kind, **fields):
        self.reporter.emit(self.server_id, handler._uid, kind, **fields)

    def setup(self, handler, base, base_name):
        # Set only if this very instance already served a request.
        previous_uid = getattr(handler, "_uid", None)
        handler._uid = self.reporter.new_uid()
        server = self.servers.get(self.server_id)
        self.emit(
            handler, "setup",
            request=describe_request(handler.request),
            client_address=jsonable(handler.client_address),
            server_is_server=server is not None and handler.server is server,
            request_socket_is_server_socket=request_socket(handler.request) is getattr(
                handler.server, "socket", None),
            server_type=type_name(handler.server),
            previous_uid=previous_uid,
        )
        try:
            self._set_up(handler, base, base_name)
        except BaseException as exc:
            # The server skips finish() after a failed setup(): without this, nothing would
            # say that the handler is done.
            self.emit(handler, "setup-raised", error=repr(exc), error_type=type(exc).__name__)
            raise

    def _set_up(self, handler, base, base_name):
        if self.options.get("sndbuf"):
            # A small send buffer: the connection fills up as a congested one does.
            handler.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                       int(self.options["sndbuf"]))
        base.setup(handler)
        if base_name in FILE_BASES:
            self.emit(handler, "setup-done", **stream_file_facts(handler, filenos=True))
        if self.options.get("raise_in") == "setup":
            _raise(self.options.get("raise"))

    def handle(self, handler, body):
        self.emit(handler, "handle")
        try:
            self._before_body(handler)
            result = body(handler)
        except BaseException as exc:
            self.emit(handler, "handle-raised", error=repr(exc),
                      error_type=type(exc).__name__)
            raise
        self.emit(handler, "handle-returned", **result)

    def _before_body(self, handler):
        """The options that act at the start of handle(), in this order."""
        options = self.options
        if options.get("sleep") and _sleeps_over(handler.request, options):
            time.sleep(float(options["sleep"]))
        if options.get("mark_server"):
            handler.server.conformance_mark = os.getpid()
        if options.get("shutdown_server"):
            started = options["shutdown_server"] == "started"
            (self.servers.get(self.server_id) if started else handler.server).shutdown()
            self.emit(handler, "shutdown-returned")
        if options.get("raise_in") == "handle":
            _raise(options.get("raise"))

    def finish(self, handler, base):
        try:
            base.finish(handler)
        except BaseException as exc:
            self.emit(handler, "finish", error=repr(exc), error_type=type(exc).__name__,
                      **stream_file_facts(handler))
            raise
        self.emit(handler, "finish", **stream_file_facts(handler))


def observing_handler(module, kind, options, server_id, servers, reporter):
    """A handler class of the implementation under test that reports what it sees: a
    ``kind`` with ``options`` (see the module docstring), for the server ``server_id``."""
    base_name, base, body = _base_and_body(module, kind, options)
    observer = _Observer(options, server_id, servers, reporter)

    class ObservingHandler(base):
        # The module the class had when the agent was a single script: the class names
        # that reach the kit do not carry the agent's private package name.
        __module__ = "__main__"
        conformance_options = options

        def setup(self):
            observer.setup(self, base, base_name)

        def handle(self):
            observer.handle(self, body)

        def finish(self):
            observer.finish(self, base)

    for name, value in options.get("attrs", {}).items():
        setattr(ObservingHandler, name, value)
    return ObservingHandler
