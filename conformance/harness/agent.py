"""The harness agent: runs inside the target interpreter and reports what handlers observe.

The kit starts this file with the target's own interpreter (CPython 3.6 and newer, PyPy3),
so it uses the standard library only and no syntax newer than 3.6. It never trusts the
kit's process with the implementation under test, and the kit never unpickles anything
from here: both directions are JSON, one object per line.

Protocol (kit -> agent on stdin, agent -> kit on a private copy of stdout):
  on start            {"op": "hello", "ok": true, "python": ..., "classes": [...]}
                      or {"op": "hello", "ok": false, "stage": ..., "error": ...}
  start               {"server": NAME, "handler": "echo"}  -> {"id": ID, "address": ...}
  events              {"id": ID, "since": N, "timeout_s": T} -> {"events": [...], "next": M}
  running             {"id": ID, "handlers": [UID, ...]}   -> {"running": [UID, ...]}
  stop                {"id": ID, "timeout_s": T}           -> {"shutdown": ..., "close": ...}
  quit                                                     -> the agent exits
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
import socket
import sys
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


HANDLER_BODIES = {"echo": _stream_echo, "udp-echo": _datagram_echo}


def _observing_handler(module, body, server_id, servers, reporter):
    """A handler class of the implementation under test that reports what it sees."""

    class ObservingHandler(module.BaseRequestHandler):
        def setup(self):
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
            )
            module.BaseRequestHandler.setup(self)

        def handle(self):
            reporter.emit(server_id, self._uid, "handle")
            try:
                result = body(self)
            except Exception as exc:
                reporter.emit(server_id, self._uid, "handle-raised", error=repr(exc))
                raise
            reporter.emit(server_id, self._uid, "handle-returned", **result)

        def finish(self):
            module.BaseRequestHandler.finish(self)
            reporter.emit(server_id, self._uid, "finish")

    return ObservingHandler


class _Server(object):
    def __init__(self, server, thread):
        self.server = server
        self.thread = thread
        self.events = []


class Agent(object):
    def __init__(self, module, out):
        self.module = module
        self._out = out
        self._servers = {}
        self._server_objects = {}
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        receiver, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._reporter = _Reporter(sender)
        self._receiver = receiver
        drain = threading.Thread(target=self._drain, name="conformance-drain")
        drain.daemon = True
        drain.start()

    def _drain(self):
        while True:
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
        name = request["server"]
        cls = getattr(self.module, name)
        server_id = next(self._ids)
        handler = _observing_handler(self.module, HANDLER_BODIES[request["handler"]],
                                     server_id, self._server_objects, self._reporter)
        server = cls(("127.0.0.1", 0), handler)
        self._server_objects[server_id] = server
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="conformance-serve-%d" % server_id)
        thread.daemon = True
        with self._changed:
            self._servers[server_id] = _Server(server, thread)
        thread.start()
        return {"id": server_id, "address": _jsonable(server.server_address),
                "serve_thread": thread.name}

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
        setups = dict((e["handler"], e) for e in record.events if e["kind"] == "setup")
        running = []
        for uid in request["handlers"]:
            setup = setups.get(uid)
            if setup is None:
                continue
            if setup["pid"] != os.getpid():
                if _process_state(setup["pid"]) == "running":
                    running.append(uid)
            elif setup["thread"] != record.thread.name and setup["thread_ident"] in alive_threads:
                running.append(uid)
        return {"running": running}

    def op_stop(self, request):
        record = self._servers.pop(request["id"])
        self._server_objects.pop(request["id"], None)
        timeout = min(float(request.get("timeout_s", 5)), 60.0)
        reply = {"shutdown": self._bounded(record.server.shutdown, timeout)}
        record.thread.join(timeout)
        reply["serve_forever_exited"] = not record.thread.is_alive()
        reply["close"] = self._bounded(record.server.server_close, timeout)
        reply["children"] = _children_of(os.getpid())
        return reply

    @staticmethod
    def _bounded(call, timeout):
        outcome = {}

        def run():
            try:
                call()
                outcome["result"] = "ok"
            except Exception as exc:
                outcome["result"] = "raised %r" % (exc,)

        thread = threading.Thread(target=run, name="conformance-bounded")
        thread.daemon = True
        thread.start()
        thread.join(timeout)
        return outcome.get("result", "hung")

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


def _read_lines(fd):
    """Lines from the kit; waits through select so that a patched select cooperates."""
    buffer = b""
    while True:
        while b"\n" not in buffer:
            select.select([fd], [], [])
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
            module_name, _, attribute = prelude.partition(":")
            call = importlib.import_module(module_name)
            for part in attribute.split("."):
                call = getattr(call, part)
            call()
        stage = "import"
        if impl.endswith(".py") or os.sep in impl:
            # As when the file is run as a script: its own folder is importable.
            sys.path.insert(0, os.path.dirname(os.path.abspath(impl)))
            spec = importlib.util.spec_from_file_location(
                os.path.splitext(os.path.basename(impl))[0], impl)
            if spec is None:
                raise ImportError("cannot load %s" % impl)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module, None
        return importlib.import_module(impl), None
    except BaseException as exc:
        return None, {"op": "hello", "ok": False, "stage": stage,
                      "error": "%s: %s" % (type(exc).__name__, exc),
                      "traceback": traceback.format_exc()}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", default="socketserver")
    parser.add_argument("--prelude", default="")
    args = parser.parse_args(argv)
    # The protocol keeps the real stdout; whatever the implementation prints goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    # Import the implementation from the user's folder, never from the kit's.
    sys.path[0] = os.getcwd()
    module, failure = _load(args.impl, args.prelude)
    if failure is not None:
        out.write(json.dumps(failure) + "\n")
        out.flush()
        return 3
    agent = Agent(module, out)
    agent.send(agent.hello())
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
