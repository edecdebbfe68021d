"""The agent's state: the servers it started, the calls it runs in the background, the
events each server's handlers reported; and the ops (``op_*``) that the kit's requests name.
"""

import itertools
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

from . import events, inspection, teardown
from .handlers import observing_handler
from .instrumentation import (
    bare_base_server,
    instrumented_server,
    recording_server,
    server_kind,
)
from .protocol import PROTOCOL_VERSION, jsonable
from .tasks import Task

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
EVENT_LIMIT = 60000
# serve_forever()'s own default.
DEFAULT_POLL_INTERVAL = 0.5


class _Server(object):
    def __init__(self, server, thread, tmpdir, owned):
        self.server = server
        self.thread = thread
        self.tmpdir = tmpdir
        self.serving = thread is not None
        # (the SIGCHLD disposition to restore when the server stops,) if it changed it.
        self.sigchld_before = ()
        self.events = []
        # serve_forever() calls the kit made itself, as tasks
        self.loops = []
        # The poll_interval of every serve_forever() of the server.
        self.poll_intervals = []
        # The agent's children before the server existed: the target's own helpers.
        self.children_before = set(inspection.children_of(os.getpid()))
        # every call the kit made on the server, as tasks
        self.calls = []
        # The sockets the agent opened for the server itself (a bare BaseServer's): closed
        # when it stops, whatever the server's own methods did.
        self.owned = owned

    def loop_threads(self):
        """Every thread that runs, or ran, this server's serve_forever()."""
        threads = [task.thread for task in self.loops]
        return threads if self.thread is None else [self.thread, *threads]


def _wakes(events, wake):
    """Whether ``events`` hold one that ends a wait for the kinds ``wake`` (any, if empty)."""
    if not wake:
        return bool(events)
    return any(event["kind"] in wake or "call:%s" % event.get("method") in wake
               for event in events)


def _star_imported(module, name):
    """Whether ``from module import *`` binds ``name``: the module's __all__ lists it, or,
    without __all__, it is one of the module's public names."""
    exported = getattr(module, "__all__", None)
    if exported is None:
        return name in vars(module) and not name.startswith("_")
    return name in exported


def _address(family, request):
    """(address to bind, temporary folder to remove at stop or None) for ``family``."""
    if family == "unix":
        tmpdir = tempfile.mkdtemp(prefix="conformance-")
        return os.path.join(tmpdir, "server.sock"), tmpdir
    host = "::1" if family == "inet6" else "127.0.0.1"
    return (host, int(request.get("port", 0))), None


class Agent(object):
    """The implementation ``module`` under test, the user's own server classes
    (``user_servers``: spec -> class) and what the agent started with them; with
    ``measuring`` (--coverage), each server starts under the coverage context the kit names.
    Create it after the prelude ran: it opens the event channel."""

    def __init__(self, module, user_servers=None, measuring=None):
        self.module = module
        self.user_servers = dict(user_servers or {})
        self._measuring = measuring
        self._servers = {}
        self._server_objects = {}
        self._tasks = {}
        self._ids = itertools.count(1)
        self._changed = threading.Condition()
        self._reporter = events.open_channel(self._file_event)

    def _file_event(self, event):
        with self._changed:
            record = self._servers.get(event["server"])
            if record is not None and len(record.events) < EVENT_LIMIT:
                record.events.append(event)
            self._changed.notify_all()

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
            "server_classes": [
                {"spec": spec, "name": cls.__name__, "kind": server_kind(self.module, cls)}
                for spec, cls in self.user_servers.items()],
        }

    def _class(self, name):
        """A server class by name: the implementation's, or the user's own by its spec;
        None when there is no such class."""
        if name in self.user_servers:
            return self.user_servers[name]
        return getattr(self.module, name, None)

    def _required_class(self, name):
        """``_class``, for an operation that cannot go on without it."""
        cls = self._class(name)
        if cls is None:
            raise AttributeError("%s has no %s" % (self.module.__name__, name))
        return cls

    def op_start(self, request):
        """Start a server. ``handler`` is a kind name or {"kind": ..., options}; ``family``
        is inet (default), inet6 or unix; ``attrs`` are server class attributes;
        ``serve`` false leaves serve_forever to the kit; ``verify`` false makes
        verify_request refuse every request; ``port`` (inet, inet6) is the port to bind,
        0 (a free one) by default; ``sigchld`` "ignore" sets SIGCHLD to SIG_IGN until the
        server stops, so that the kernel, not the server, reaps its children;
        ``server`` may name a user's own server class by its spec; ``bare_base`` starts
        instead a direct subclass of the implementation's BaseServer that supplies only a
        listening TCP socket (instrumentation.bare_base_server), on an inet address;
        ``context`` is the coverage context of what runs from now on (with --coverage)."""
        if self._measuring is not None and request.get("context"):
            self._measuring.switch(request["context"])
        owned = []
        if request.get("bare_base"):
            cls = bare_base_server(self.module, owned)
            # BaseServer's constructor takes no bind_and_activate: it binds nothing.
            arguments = {}
        else:
            cls = self._required_class(request["server"])
            # Without bind_and_activate, the constructor's own default.
            arguments = ({"bind_and_activate": request["bind_and_activate"]}
                         if "bind_and_activate" in request else {})
        handler_spec = request.get("handler", "echo")
        if not isinstance(handler_spec, dict):
            handler_spec = {"kind": handler_spec}
        server_id = next(self._ids)
        handler = observing_handler(self.module, handler_spec["kind"], handler_spec,
                                    server_id, self._server_objects, self._reporter)
        address, tmpdir = _address(request.get("family", "inet"), request)
        server_cls = instrumented_server(cls, server_id, self._reporter, request)
        with self._changed:
            record = self._servers[server_id] = _Server(None, None, tmpdir, owned)
        try:
            server = server_cls(address, handler, **arguments)
        except BaseException:
            with self._changed:
                del self._servers[server_id]
            teardown.close_all(record.owned)
            if tmpdir:
                shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        record.server = server
        self._server_objects[server_id] = server
        if request.get("sigchld") == "ignore":
            record.sigchld_before = (signal.signal(signal.SIGCHLD, signal.SIG_IGN),)
        if request.get("serve", True):
            record.poll_intervals.append(float(request.get("poll_interval", 0.05)))
            record.thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": record.poll_intervals[-1]},
                name="conformance-serve-%d" % server_id)
            record.thread.daemon = True
            record.serving = True
            record.thread.start()
        return {"id": server_id, "address": jsonable(server.server_address),
                "serve_thread": record.thread.name if record.thread else None}

    def op_construct(self, request):
        """Construct a server of the class ``server`` names at ``address`` (a path, or a host
        and port), one the kit knows to be in use, so that binding fails: say what the
        constructor raised, how many times it called server_close(), and whether it left
        the socket it created open (which the agent then closes). A server whose
        constructor returns is closed at once."""
        cls = self._required_class(request["server"])
        made = []
        closes = []
        address = request["address"]
        address = tuple(address) if isinstance(address, list) else address
        error = None
        try:
            # Binding asked for outright: whether it is the default is not this op's question.
            recording_server(cls, made, closes)(address, self.module.BaseRequestHandler,
                                                bind_and_activate=True)
        except Exception as exc:
            error = exc
        reply = {"error": None if error is None else repr(error),
                 "error_type": None if error is None else type(error).__name__,
                 "server_close_calls": len(closes)}
        if error is None:
            made[0].server_close()
        reply["socket_left_open"] = bool(made) and teardown.close_socket(made[0])
        return reply

    def op_events(self, request):
        """The server's events from the ``since``-th on, once there is one (with ``wake``,
        one of those kinds: a handler's step, or "call:METHOD") or ``timeout_s`` passed."""
        record = self._servers[request["id"]]
        since = request.get("since", 0)
        wake = set(request.get("wake") or ())
        deadline = time.time() + min(float(request.get("timeout_s", 0)), 30.0)
        seen = since
        with self._changed:
            while time.time() < deadline:
                if _wakes(record.events[seen:], wake):
                    break
                seen = len(record.events)
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
                if inspection.process_state(setup["pid"]) == "running":
                    running.append(uid)
            elif setup["thread"] != serve_thread and setup["thread_ident"] in alive_threads:
                running.append(uid)
        return {"running": running}

    def op_call(self, request):
        """Call a server method, bounded; ``background`` returns a task to join later."""
        record = self._servers[request["id"]]
        method = getattr(record.server, request["method"])
        args = [tuple(a) if isinstance(a, list) else a for a in request.get("args", [])]
        task = Task(lambda: method(*args), request["method"] + "()")
        # Those still running, which the stop op waits for, and this one.
        record.calls = [call for call in record.calls if call.running()] + [task]
        if request["method"] == "serve_forever":
            record.serving = True
            record.loops.append(task)
            record.poll_intervals.append(float(args[0]) if args else DEFAULT_POLL_INTERVAL)
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
        threads the agent runs; with ``processes``, its children and zombies (``pids``:
        those to check by name); with ``sockets``, the connections it holds. (Those two
        look through /proc: only when asked.)"""
        record = self._servers[request["id"]]
        server = record.server
        state = {"server_address": jsonable(server.server_address),
                 "service_actions": getattr(server, "conformance_service_actions", 0),
                 "threads": [t.name for t in threading.enumerate()],
                 # False once the agent's serve_forever() thread has returned or raised.
                 "serve_forever_running": record.thread is not None
                 and record.thread.is_alive()}
        if request.get("processes"):
            state["children"], state["zombies"] = inspection.children_and_zombies(
                os.getpid(), also=request.get("pids", ()))
        if request.get("sockets"):
            state["peers"], state["stream_connections"] = inspection.held_sockets()
        sock = getattr(server, "socket", None)
        try:
            state["socket_fileno"] = sock.fileno()
            state["sockname"] = jsonable(sock.getsockname())
            state["listening"] = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
            state["reuse_address"] = bool(sock.getsockopt(socket.SOL_SOCKET,
                                                          socket.SO_REUSEADDR))
        except (OSError, AttributeError) as exc:
            state["socket_error"] = repr(exc)
        for name in request.get("attrs", []):
            state.setdefault("attrs", {})[name] = jsonable(getattr(server, name, None))
        return state

    def op_inspect(self, request):
        """A class of the implementation (or a user's own server class, by its spec): its
        MRO, which class defines each attribute and the value it gives it, and whether
        ``from module import *`` binds its name."""
        cls = self._class(request["class"])
        if cls is None:
            return {"exists": False}
        mro = list(cls.__mro__)
        owners = {}
        values = {}
        for attr in request.get("attrs", []):
            owner = next((c for c in mro if attr in vars(c)), None)
            owners[attr] = owner.__name__ if owner is not None else None
            if owner is not None:
                values[attr] = jsonable(vars(owner)[attr])
        subclass_of = {}
        for other in request.get("subclass_of", []):
            other_cls = getattr(self.module, other, None)
            subclass_of[other] = other_cls is not None and issubclass(cls, other_cls)
        return {"exists": True, "mro": [c.__name__ for c in mro], "owners": owners,
                "values": values, "subclass_of": subclass_of,
                "star_imported": _star_imported(self.module, request["class"])}

    def op_set(self, request):
        """Set attributes on the server instance, as a subclass or a user would set them."""
        server = self._servers[request["id"]].server
        for name, value in request.get("attrs", {}).items():
            setattr(server, name, value)
        return {}

    def op_settimeout(self, request):
        """Call settimeout(``seconds``) on the server's socket (None: blocking), as programs
        written before BaseServer.timeout existed did to bound handle_request()."""
        self._servers[request["id"]].server.socket.settimeout(request.get("seconds"))
        return {}

    def op_with(self, request):
        """Run ``with server as entered: pass``, bounded; the value says whether
        ``entered`` is the server itself."""
        server = self._servers[request["id"]].server

        def use():
            with server as entered:
                pass
            return entered is server

        return Task(use, "with").wait(min(float(request.get("timeout_s", 5)), 60.0))

    def op_stop(self, request):
        """Stop a server, by other means where its own shutdown() or server_close() fails
        (see the teardown module), and say how it went."""
        record = self._servers.pop(request["id"])
        self._server_objects.pop(request["id"], None)
        timeout = min(float(request.get("timeout_s", 5)), 60.0)
        shutdown_wait = timeout
        if request.get("shutdown_s") is not None:
            slowest = max(record.poll_intervals or [DEFAULT_POLL_INTERVAL])
            shutdown_wait = min(timeout, float(request["shutdown_s"]) + slowest)
        running = [task for task in record.calls
                   if task.running() and task not in record.loops]
        reply = teardown.stop(record.server, record.serving, record.loop_threads(), running,
                              timeout, shutdown_wait, owned=record.owned)
        for before in record.sigchld_before:
            # None: a handler installed outside Python, which cannot be put back from here.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL if before is None else before)
        reply["children"] = [pid for pid in inspection.children_of(os.getpid())
                             if pid not in record.children_before]
        if record.tmpdir:
            shutil.rmtree(record.tmpdir, ignore_errors=True)
        return reply
