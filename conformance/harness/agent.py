"""The harness agent: runs inside the target interpreter and reports what handlers observe.

The kit starts this file with the target's own interpreter (CPython 3.6 and newer, PyPy3),
so it uses the standard library only and no syntax newer than 3.6. It never trusts the
kit's process with the implementation under test, and the kit never unpickles anything
from here: both directions are JSON, one object per line.

Protocol (kit -> agent on stdin, agent -> kit on a private copy of stdout):
  on start   {"op": "hello", "ok": true, "python": ..., "classes": [...]}
             or {"op": "hello", "ok": false, "stage": ..., "error": ...}
  start      {"server": NAME, "handler": KIND or {"kind": KIND, options}, "family": ...,
              "attrs": {...}, "serve": bool, "verify": bool, "port": N,
              "sigchld": "ignore"}
             -> {"id": ID, "address": ...}
  events     {"id": ID, "since": N, "timeout_s": T}   -> {"events": [...], "next": M}
  running    {"id": ID, "handlers": [UID, ...]}       -> {"running": [UID, ...]}
  call       {"id": ID, "method": NAME, "args": [...], "timeout_s": T, "background": bool}
             -> {"result": "ok"|"raised"|"hung", "value": ..., "elapsed": S} or {"task": N}
  join       {"task": N, "timeout_s": T}              -> as call
  state      {"id": ID, "attrs": [NAME, ...]}         -> socket, attributes, threads, ...
  inspect    {"class": NAME, "attrs": [...], "subclass_of": [...]} -> {"mro": ..., ...}
  set        {"id": ID, "attrs": {NAME: VALUE, ...}}   -> sets them on the server instance
  with       {"id": ID, "timeout_s": T}               -> runs `with server: pass`, as call
  stop       {"id": ID, "timeout_s": T}               -> {"shutdown": ..., "close": ...,
                                                          "serve_forever_exited": bool}
  quit                                                -> the agent exits
Handlers report through a datagram socket pair, so that handlers running in forked
children report as reliably as those running in threads.
"""

import argparse
import importlib
import importlib.util
import itertools
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback

PROTOCOL_VERSION = 1
SERVER_CLASSES = (
    "TCPServer",
    "UDPServer",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "ForkingTCPServer",
    "ForkingUDPServer",
    "UnixStreamServer",
    "UnixDatagramServer",
    "ThreadingUnixStreamServer",
    "ThreadingUnixDatagramServer",
    "ForkingUnixStreamServer",
    "ForkingUnixDatagramServer",
)
# The reference handler reads in 1024-byte steps, as the socketserver documentation's
# example does; payloads around this size are the interesting ones.
RECV_SIZE = 1024
EVENT_LIMIT = 60000


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _type_name(obj):
    cls = type(obj)
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _describe_socket(sock):
    info = {"type": _type_name(sock), "is_socket": isinstance(sock, socket.socket)}
    for key, call in (
        ("so_type", lambda: sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)),
        ("family", lambda: int(sock.family)),
        ("sockname", lambda: _jsonable(sock.getsockname())),
        ("peername", lambda: _jsonable(sock.getpeername())),
        ("fileno", lambda: sock.fileno()),
    ):
        try:
            info[key] = call()
        except Exception as exc:
            info[key + "_error"] = repr(exc)
    return info


def _describe_request(request):
    if isinstance(request, (tuple, list)):
        items = list(request)
        info = {"kind": "sequence", "type": _type_name(request), "length": len(items)}
        info["is_tuple"] = isinstance(request, tuple)
        if len(items) == 2:
            data, sock = items
            info["data_type"] = _type_name(data)
            if isinstance(data, (bytes, bytearray)):
                info["data"] = bytes(data).hex()
            info["socket"] = _describe_socket(sock)
        return info
    info = _describe_socket(request)
    info["kind"] = "socket"
    return info


def _second(request):
    if isinstance(request, (tuple, list)) and len(request) == 2:
        return request[1]
    return None


def _process_state(pid):
    """'running', 'zombie' or 'gone' for a process of this machine."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return "gone"
        return "running"
    return "zombie" if state in ("Z", "X") else "running"


def _children_of(pid):
    children = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return children
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            children.append(int(name))
    return children


def _zombies_of(pid):
    """The children of ``pid`` that have exited and were not reaped (Linux /proc)."""
    zombies = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return zombies
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] == "Z":
            zombies.append(int(name))
    return zombies


class _Reporter(object):
    """The handler side of the event channel; shared by threads and inherited by children."""

    def __init__(self, sock):
        self._sock = sock
        self._counter = itertools.count()

    def new_uid(self):
        return "%d-%d" % (os.getpid(), next(self._counter))

    def emit(self, server_id, uid, kind, **fields):
        fields.update(server=server_id, handler=uid, kind=kind, pid=os.getpid(),
                      thread=threading.current_thread().name,
                      thread_ident=threading.current_thread().ident, time=time.time())
        try:
            self._sock.send(json.dumps(fields).encode("utf-8"))
        except Exception:
            traceback.print_exc()


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


def _line_echo(handler):
    """StreamRequestHandler: each line comes back upper-cased; a line ``read N`` makes the
    handler read exactly N more bytes with rfile.read(N) and send those back upper-cased;
    a line ``write N TEXT`` makes it send N bytes of TEXT repeated, upper-cased, with one
    wfile.write()."""
    lines = 0
    # [asked, got] for every rfile.read(N) that returned other than N bytes
    short_reads = []
    # [length, returned] for every wfile.write(b) that returned other than len(b)
    short_writes = []
    try:
        writable = bool(handler.wfile.writable())
    except Exception as exc:
        writable = repr(exc)

    def write(data):
        written = handler.wfile.write(data)
        if written != len(data):
            short_writes.append([len(data), written])

    while True:
        line = handler.rfile.readline()
        if not line:
            return {"lines": lines, "short_reads": short_reads, "short_writes": short_writes,
                    "wfile_writable": writable, "ended_by": "eof"}
        lines += 1
        if line.startswith(b"read "):
            wanted = int(line[5:])
            block = handler.rfile.read(wanted)
            if len(block) != wanted:
                short_reads.append([wanted, len(block)])
            write(block.upper())
        elif line.startswith(b"write "):
            size, text = line[6:].rstrip(b"\n").split(b" ", 1)
            write((text * (int(size) // len(text) + 1))[:int(size)].upper())
        else:
            write(line.upper())


def _datagram_file_echo(handler):
    """DatagramRequestHandler: rfile holds the datagram; wfile is sent back at finish()."""
    data = handler.rfile.read()
    if not handler.conformance_options.get("silent"):
        handler.wfile.write(data.upper())
    return {"received": len(data), "ended_by": "datagram"}


def _idle(handler):
    return {"ended_by": "idle"}


# name -> (handler base class in the implementation, body)
HANDLER_KINDS = {
    "echo": ("BaseRequestHandler", _stream_echo),
    "udp-echo": ("BaseRequestHandler", _datagram_echo),
    "lines": ("StreamRequestHandler", _line_echo),
    "datagram-file": ("DatagramRequestHandler", _datagram_file_echo),
    "idle": ("BaseRequestHandler", _idle),
}


class HandlerRaised(Exception):
    """What a handler raises when the kit asks it to raise an Exception."""


def _raise(kind):
    if kind == "KeyboardInterrupt":
        raise KeyboardInterrupt("raised by the conformance handler")
    if kind == "SystemExit":
        raise SystemExit(3)
    raise HandlerRaised("raised by the conformance handler")


def _stream_file_facts(handler):
    facts = {}
    for name in ("rfile", "wfile"):
        stream = getattr(handler, name, None)
        if stream is not None:
            facts[name + "_type"] = _type_name(stream)
            facts[name + "_closed"] = bool(getattr(stream, "closed", None))
    sock = handler.request
    # Duck-typed: a socket-like request that is not a socket.socket still has its facts.
    if not isinstance(sock, (tuple, list)) and hasattr(sock, "gettimeout"):
        try:
            facts["timeout"] = sock.gettimeout()
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                facts["nodelay"] = bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        except OSError as exc:
            facts["socket_error"] = repr(exc)
    return facts


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


def _import_module(name):
    """A module by dotted name, or by the path of a .py file (its folder importable)."""
    if name.endswith(".py") or os.sep in name:
        folder = os.path.dirname(os.path.abspath(name))
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(
            os.path.splitext(os.path.basename(name))[0], name)
        if spec is None:
            raise ImportError("cannot load %s" % name)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


def _import_attribute(spec):
    """``module:attribute.path``, the module named or given as a file."""
    module_name, _, attribute = spec.rpartition(":")
    value = _import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def _user_handler_kind(user_class):
    """"stream" or "datagram" by the handler's documented base class, else "base"."""
    names = [cls.__name__ for cls in getattr(user_class, "__mro__", ())]
    if "handle" not in dir(user_class):
        raise TypeError("%r has no handle() method" % (user_class,))
    if "StreamRequestHandler" in names:
        return "stream"
    if "DatagramRequestHandler" in names:
        return "datagram"
    return "base"


def _observing_handler(module, kind, options, server_id, servers, reporter):
    """A handler class of the implementation under test that reports what it sees.

    ``options``: ``raise_in`` ("setup" or "handle") with ``raise`` ("Exception",
    "KeyboardInterrupt", "SystemExit"), ``sleep`` (seconds, at the start of handle;
    with ``sleep_prefix``, only for datagrams that start with that text),
    ``shutdown_server`` (handle calls self.server.shutdown(); "started": shutdown() of the
    server the kit started, whatever self.server is), ``mark_server`` (handle sets
    an attribute on self.server), ``sndbuf`` (SO_SNDBUF of the connection), ``attrs``
    (class attributes such as timeout, disable_nagle_algorithm, wbufsize)."""
    if kind == "user":
        base_name = "user"
        base = _import_attribute(options["class"])
        body = _user_handle(base)
    else:
        base_name, body = HANDLER_KINDS[kind]
        base = getattr(module, base_name)

    class ObservingHandler(base):
        conformance_options = options

        def setup(self):
            # Set only if this very instance already served a request.
            previous_uid = getattr(self, "_uid", None)
            self._uid = reporter.new_uid()
            server = servers.get(server_id)
            reporter.emit(
                server_id, self._uid, "setup",
                request=_describe_request(self.request),
                client_address=_jsonable(self.client_address),
                server_is_server=server is not None and self.server is server,
                request_socket_is_server_socket=_second(self.request) is getattr(
                    self.server, "socket", None),
                server_type=_type_name(self.server),
                previous_uid=previous_uid,
            )
            if options.get("sndbuf"):
                # A small send buffer: the connection fills up as a congested one does.
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                        int(options["sndbuf"]))
            base.setup(self)
            if base_name in ("StreamRequestHandler", "DatagramRequestHandler"):
                reporter.emit(server_id, self._uid, "setup-done", **_stream_file_facts(self))
            if options.get("raise_in") == "setup":
                _raise(options.get("raise"))

        def handle(self):
            reporter.emit(server_id, self._uid, "handle")
            try:
                if options.get("sleep") and _sleeps_over(self.request, options):
                    time.sleep(float(options["sleep"]))
                if options.get("mark_server"):
                    self.server.conformance_mark = os.getpid()
                if options.get("shutdown_server"):
                    started = options["shutdown_server"] == "started"
                    (servers.get(server_id) if started else self.server).shutdown()
                    reporter.emit(server_id, self._uid, "shutdown-returned")
                if options.get("raise_in") == "handle":
                    _raise(options.get("raise"))
                result = body(self)
            except BaseException as exc:
                reporter.emit(server_id, self._uid, "handle-raised", error=repr(exc),
                              error_type=type(exc).__name__)
                raise
            reporter.emit(server_id, self._uid, "handle-returned", **result)

        def finish(self):
            try:
                base.finish(self)
            finally:
                reporter.emit(server_id, self._uid, "finish", **_stream_file_facts(self))

    for name, value in options.get("attrs", {}).items():
        setattr(ObservingHandler, name, value)
    return ObservingHandler


# Server methods whose calls are reported, in the order the documentation describes them.
SERVER_HOOKS = (
    "get_request", "verify_request", "process_request", "finish_request",
    "shutdown_request", "close_request", "handle_error", "handle_timeout", "server_close",
)


def _reporting_hook(cls, name, server_id, reporter, options):
    original = getattr(cls, name)

    def hook(self, *args):
        fields = {"method": name}
        if name == "handle_error":
            error = sys.exc_info()[1]
            fields["error_type"] = type(error).__name__ if error is not None else None
            fields["client_address"] = _jsonable(args[1]) if len(args) > 1 else None
        elif name in ("verify_request", "process_request", "finish_request"):
            fields["client_address"] = _jsonable(args[1])
        reporter.emit(server_id, "server", "call", **fields)
        if name == "verify_request" and options.get("verify") is False:
            return False
        return original(self, *args)

    hook.__name__ = name
    return hook


def _instrumented_server(cls, server_id, reporter, options):
    """``cls`` with its request-handling methods reporting their calls, and the attributes
    the kit asked for (timeout, daemon_threads, block_on_close, max_children, ...)."""
    namespace = {}
    for name in SERVER_HOOKS:
        if hasattr(cls, name):
            namespace[name] = _reporting_hook(cls, name, server_id, reporter, options)
    if hasattr(cls, "service_actions"):
        original = cls.service_actions

        def service_actions(self):
            self.conformance_service_actions = getattr(
                self, "conformance_service_actions", 0) + 1
            return original(self)

        namespace["service_actions"] = service_actions
    namespace.update(options.get("attrs", {}))
    if options.get("family") == "inet6":
        namespace["address_family"] = socket.AF_INET6
    return type(cls.__name__, (cls,), namespace)


def _open_socket_peers():
    """The peer address of every connected socket this process holds (Linux /proc)."""
    peers = []
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return peers
    for name in fds:
        fd = int(name)
        try:
            if not os.readlink("/proc/self/fd/%d" % fd).startswith("socket:"):
                continue
            for family in (socket.AF_INET, socket.AF_INET6):
                probe = socket.fromfd(fd, family, socket.SOCK_STREAM)
                try:
                    if probe.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == family:
                        peers.append(_jsonable(probe.getpeername()))
                finally:
                    probe.close()
        except (OSError, ValueError):
            continue
    return peers


def _stream_connections():
    """The local address of every stream socket (IPv4, IPv6 or Unix) this process holds
    that is not listening: for a server, the connections it accepted and still holds,
    whatever state the connection itself is in (Linux /proc)."""
    socknames = []
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return socknames
    for name in fds:
        fd = int(name)
        try:
            if not os.readlink("/proc/self/fd/%d" % fd).startswith("socket:"):
                continue
            probe = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
            try:
                family = probe.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN)
                held = (family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX)
                        and probe.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
                        == socket.SOCK_STREAM
                        and not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
            finally:
                probe.close()
            if held:
                # Addresses are decoded by the socket object's family: ask one of the
                # right family.
                sock = socket.fromfd(fd, family, socket.SOCK_STREAM)
                try:
                    socknames.append(_jsonable(sock.getsockname()))
                finally:
                    sock.close()
        except (OSError, ValueError):
            continue
    return socknames
    for name in fds:
        fd = int(name)
        try:
            if not os.readlink("/proc/self/fd/%d" % fd).startswith("socket:"):
                continue
            probe = socket.fromfd(fd, socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                if (probe.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_UNIX
                        and probe.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
                        == socket.SOCK_STREAM
                        and not probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)):
                    socknames.append(_jsonable(probe.getsockname()))
            finally:
                probe.close()
        except (OSError, ValueError):
            continue
    return socknames


class _Server(object):
    def __init__(self, server, thread, tmpdir):
        self.server = server
        self.thread = thread
        self.tmpdir = tmpdir
        self.serving = thread is not None
        # (the SIGCHLD disposition to restore when the server stops,) if it changed it.
        self.sigchld_before = ()
        self.events = []
        # serve_forever() calls the kit made itself, as tasks
        self.loops = []

    def loop_threads(self):
        """Every thread that runs, or ran, this server's serve_forever()."""
        threads = [task.thread for task in self.loops]
        return threads if self.thread is None else [self.thread, *threads]


class _Task(object):
    def __init__(self, call):
        self.outcome = {}
        self.started = time.time()
        self.thread = threading.Thread(target=self._run, args=(call,), name="conformance-call")
        self.thread.daemon = True
        self.thread.start()

    def _run(self, call):
        try:
            self.outcome["value"] = _jsonable(call())
            self.outcome["result"] = "ok"
        except BaseException as exc:
            self.outcome["result"] = "raised"
            self.outcome["exception"] = type(exc).__name__
            self.outcome["error"] = repr(exc)
        self.outcome["elapsed"] = time.time() - self.started

    def wait(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            return {"result": "hung", "elapsed": time.time() - self.started}
        return dict(self.outcome)


class Agent(object):
    def __init__(self, module, out):
        self.module = module
        self._out = out
        self._servers = {}
        self._server_objects = {}
        self._tasks = {}
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._pid = os.getpid()
        receiver, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._reporter = _Reporter(sender)
        self._receiver = receiver
        if hasattr(os, "register_at_fork"):
            # Under gevent or eventlet a forked handler inherits the drain thread as a
            # green thread waiting in recv(): without its own copy of the receiving end,
            # it can never take a report meant for the agent.
            os.register_at_fork(after_in_child=receiver.close)
        drain = threading.Thread(target=self._drain, name="conformance-drain")
        drain.daemon = True
        drain.start()

    def _drain(self):
        while True:
            if os.getpid() != self._pid:
                # A forked handler's copy of this (green) thread must not steal reports.
                return
            try:
                data = self._receiver.recv(1 << 20)
            except OSError:
                return
            event = json.loads(data.decode("utf-8"))
            with self._changed:
                record = self._servers.get(event["server"])
                if record is not None and len(record.events) < EVENT_LIMIT:
                    record.events.append(event)
                self._changed.notify_all()

    def send(self, message):
        if os.getpid() != self._pid:
            # A forked handler's copy of a green thread that was answering the kit.
            return
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    def hello(self):
        return {
            "op": "hello",
            "ok": True,
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "python": sys.executable,
            "python_version": "%d.%d.%d" % sys.version_info[:3],
            "implementation": sys.implementation.name,
            "module": self.module.__name__,
            "module_file": getattr(self.module, "__file__", None),
            "classes": [name for name in SERVER_CLASSES if hasattr(self.module, name)],
        }

    def op_start(self, request):
        """Start a server. ``handler`` is a kind name or {"kind": ..., options}; ``family``
        is inet (default), inet6 or unix; ``attrs`` are server class attributes;
        ``serve`` false leaves serve_forever to the kit; ``verify`` false makes
        verify_request refuse every request; ``port`` (inet, inet6) is the port to bind,
        0 (a free one) by default; ``sigchld`` "ignore" sets SIGCHLD to SIG_IGN until the
        server stops, so that the kernel, not the server, reaps its children."""
        name = request["server"]
        cls = getattr(self.module, name)
        handler_spec = request.get("handler", "echo")
        if not isinstance(handler_spec, dict):
            handler_spec = {"kind": handler_spec}
        server_id = next(self._ids)
        handler = _observing_handler(self.module, handler_spec["kind"], handler_spec,
                                     server_id, self._server_objects, self._reporter)
        family = request.get("family", "inet")
        tmpdir = None
        if family == "unix":
            tmpdir = tempfile.mkdtemp(prefix="conformance-")
            address = os.path.join(tmpdir, "server.sock")
        elif family == "inet6":
            address = ("::1", int(request.get("port", 0)))
        else:
            address = ("127.0.0.1", int(request.get("port", 0)))
        server_cls = _instrumented_server(cls, server_id, self._reporter, request)
        with self._changed:
            record = self._servers[server_id] = _Server(None, None, tmpdir)
        try:
            server = server_cls(address, handler,
                                bind_and_activate=request.get("bind_and_activate", True))
        except BaseException:
            with self._changed:
                del self._servers[server_id]
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        record.server = server
        self._server_objects[server_id] = server
        if request.get("sigchld") == "ignore":
            record.sigchld_before = (signal.signal(signal.SIGCHLD, signal.SIG_IGN),)
        if request.get("serve", True):
            record.thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": float(request.get("poll_interval", 0.05))},
                name="conformance-serve-%d" % server_id)
            record.thread.daemon = True
            record.serving = True
            record.thread.start()
        return {"id": server_id, "address": _jsonable(server.server_address),
                "serve_thread": record.thread.name if record.thread else None}

    def op_events(self, request):
        record = self._servers[request["id"]]
        since = request.get("since", 0)
        deadline = time.time() + min(float(request.get("timeout_s", 0)), 30.0)
        with self._changed:
            while len(record.events) <= since and time.time() < deadline:
                self._changed.wait(max(0.0, deadline - time.time()))
            events = record.events[since:]
        return {"events": events, "next": since + len(events)}

    def op_running(self, request):
        record = self._servers[request["id"]]
        alive_threads = set(t.ident for t in threading.enumerate())
        serve_thread = record.thread.name if record.thread else None
        setups = dict((e["handler"], e) for e in record.events if e["kind"] == "setup")
        running = []
        for uid in request["handlers"]:
            setup = setups.get(uid)
            if setup is None:
                continue
            if setup["pid"] != os.getpid():
                if _process_state(setup["pid"]) == "running":
                    running.append(uid)
            elif setup["thread"] != serve_thread and setup["thread_ident"] in alive_threads:
                running.append(uid)
        return {"running": running}

    def op_call(self, request):
        """Call a server method, bounded; ``background`` returns a task to join later."""
        record = self._servers[request["id"]]
        method = getattr(record.server, request["method"])
        args = [tuple(a) if isinstance(a, list) else a for a in request.get("args", [])]
        task = _Task(lambda: method(*args))
        if request["method"] == "serve_forever":
            record.serving = True
            record.loops.append(task)
        if request.get("background"):
            task_id = next(self._ids)
            self._tasks[task_id] = task
            return {"task": task_id}
        return task.wait(min(float(request.get("timeout_s", 5)), 60.0))

    def op_join(self, request):
        task = self._tasks[request["task"]]
        return task.wait(min(float(request.get("timeout_s", 5)), 60.0))

    def op_state(self, request):
        """What the kit cannot see from outside: the server's socket, its attributes, the
        threads, children and connections the agent holds."""
        record = self._servers[request["id"]]
        server = record.server
        state = {"server_address": _jsonable(server.server_address),
                 "service_actions": getattr(server, "conformance_service_actions", 0),
                 "children": _children_of(os.getpid()),
                 "threads": [t.name for t in threading.enumerate()],
                 "peers": _open_socket_peers(),
                 "zombies": _zombies_of(os.getpid()),
                 "stream_connections": _stream_connections(),
                 # False once the agent's serve_forever() thread has returned or raised.
                 "serve_forever_running": record.thread is not None
                 and record.thread.is_alive()}
        sock = getattr(server, "socket", None)
        try:
            state["socket_fileno"] = sock.fileno()
            state["sockname"] = _jsonable(sock.getsockname())
            state["listening"] = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        except (OSError, AttributeError) as exc:
            state["socket_error"] = repr(exc)
        for name in request.get("attrs", []):
            state.setdefault("attrs", {})[name] = _jsonable(getattr(server, name, None))
        return state

    def op_inspect(self, request):
        """A class of the implementation: its MRO and which class defines each attribute."""
        cls = getattr(self.module, request["class"], None)
        if cls is None:
            return {"exists": False}
        mro = list(cls.__mro__)
        owners = {}
        for attr in request.get("attrs", []):
            owner = next((c for c in mro if attr in vars(c)), None)
            owners[attr] = owner.__name__ if owner is not None else None
        subclass_of = {}
        for other in request.get("subclass_of", []):
            other_cls = getattr(self.module, other, None)
            subclass_of[other] = other_cls is not None and issubclass(cls, other_cls)
        return {"exists": True, "mro": [c.__name__ for c in mro], "owners": owners,
                "subclass_of": subclass_of}

    def op_set(self, request):
        """Set attributes on the server instance, as a subclass or a user would set them."""
        server = self._servers[request["id"]].server
        for name, value in request.get("attrs", {}).items():
            setattr(server, name, value)
        return {}

    def op_with(self, request):
        """Run ``with server as entered: pass``, bounded; the value says whether
        ``entered`` is the server itself."""
        server = self._servers[request["id"]].server

        def use():
            with server as entered:
                pass
            return entered is server

        return _Task(use).wait(min(float(request.get("timeout_s", 5)), 60.0))

    def op_stop(self, request):
        record = self._servers.pop(request["id"])
        self._server_objects.pop(request["id"], None)
        timeout = min(float(request.get("timeout_s", 5)), 60.0)
        reply = {"shutdown": "not serving"}
        if record.serving:
            reply["shutdown"] = _Task(record.server.shutdown).wait(timeout)["result"]
        deadline = time.time() + timeout
        for thread in record.loop_threads():
            thread.join(max(0.0, deadline - time.time()))
        reply["serve_forever_exited"] = not any(t.is_alive() for t in record.loop_threads())
        reply["close"] = _Task(record.server.server_close).wait(timeout)["result"]
        for before in record.sigchld_before:
            # None: a handler installed outside Python, which cannot be put back from here.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL if before is None else before)
        reply["children"] = _children_of(os.getpid())
        if record.tmpdir:
            shutil.rmtree(record.tmpdir, ignore_errors=True)
        return reply

    def dispatch(self, request):
        handler = getattr(self, "op_" + request.get("op", ""), None)
        if handler is None:
            return {"ok": False, "error": "unknown op %r" % (request.get("op"),)}
        try:
            reply = handler(request)
        except Exception as exc:
            return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc),
                    "traceback": traceback.format_exc()}
        reply["ok"] = True
        return reply


# Captured before any prelude runs: a monkey-patched select (eventlet's) may never wake
# for a pipe, so the agent polls with the real one and sleeps with whatever time.sleep is,
# which a patched library turns into a cooperative yield.
_REAL_SELECT = select.select
_IDLE_SLEEP_MAX = 0.02


def _read_lines(fd):
    """Lines from the kit, read without ever blocking a cooperative scheduler.

    Under gevent or eventlet a forked handler inherits this loop as a green thread: in
    such a child it only idles (the child ends with os._exit), so that only the agent
    itself ever reads the kit's requests and answers them."""
    buffer = b""
    idle = 0.001
    owner = os.getpid()
    while True:
        while b"\n" not in buffer:
            if os.getpid() != owner:
                time.sleep(_IDLE_SLEEP_MAX)
                continue
            if not _REAL_SELECT([fd], [], [], 0)[0]:
                time.sleep(idle)
                idle = min(idle * 2, _IDLE_SLEEP_MAX)
                continue
            idle = 0.001
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line


def _load(impl, prelude):
    stage = "prelude"
    try:
        if prelude:
            _import_attribute(prelude)()
        stage = "import"
        return _import_module(impl), None
    except BaseException as exc:
        return None, {"op": "hello", "ok": False, "stage": stage,
                      "error": "%s: %s" % (type(exc).__name__, exc),
                      "traceback": traceback.format_exc()}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", default="socketserver")
    parser.add_argument("--prelude", default="")
    parser.add_argument("--handler", default="")
    args = parser.parse_args(argv)
    # The protocol keeps the real stdout; whatever the implementation prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    # Import the implementation from the user's folder, never from the kit's.
    sys.path[0] = os.getcwd()
    module, failure = _load(args.impl, args.prelude)
    handler_kind = None
    if failure is None and args.handler:
        try:
            handler_kind = _user_handler_kind(_import_attribute(args.handler))
        except BaseException as exc:
            failure = {"op": "hello", "ok": False, "stage": "handler",
                       "error": "%s: %s" % (type(exc).__name__, exc),
                       "traceback": traceback.format_exc()}
    if failure is not None:
        out.write(json.dumps(failure) + "\n")
        out.flush()
        return 3
    agent = Agent(module, out)
    hello = agent.hello()
    hello["user_handler"] = handler_kind
    agent.send(hello)
    for line in _read_lines(sys.stdin.fileno()):
        request = json.loads(line.decode("utf-8"))
        if request.get("op") == "quit":
            break
        reply = agent.dispatch(request)
        reply["seq"] = request.get("seq")
        agent.send(reply)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Leftover handler threads must not keep a finished agent alive.
    os._exit(code)
