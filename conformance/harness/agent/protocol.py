"""The wire between the kit and the agent: JSON lines in, JSON lines out, one op per line.

Protocol (kit -> agent on stdin, agent -> kit on a private copy of stdout):
  on start   {"op": "hello", "ok": true, "python": ..., "classes": [...],
              "server_classes": [{"spec": ..., "name": ..., "kind": ...}, ...],
              "workarounds": [NAME, ...]}  (module ``workarounds``)
             or {"op": "hello", "ok": false, "stage": ..., "error": ...}
             (stage "server-class" names the class's "spec" too; stage "coverage": the
             measurement --coverage-data asks for could not start)
  start      {"server": NAME or SPEC, "handler": KIND or {"kind": KIND, options}, "family": ...,
              "attrs": {...}, "serve": bool, "verify": bool, "port": N,
              "sigchld": "ignore", "bare_base": bool, "context": COVERAGE CONTEXT}
             -> {"id": ID, "address": ...}
  construct  {"server": NAME or SPEC, "address": ADDRESS IN USE}
             -> {"error": ..., "error_type": ..., "server_close_calls": N,
                 "socket_left_open": bool}
  events     {"id": ID, "since": N, "timeout_s": T, "wake": [KIND or "call:METHOD", ...]}
             -> {"events": [...], "next": M}, once one of the kinds (any) came, or at T
  running    {"id": ID, "handlers": [UID, ...]}       -> {"running": [UID, ...]}
  call       {"id": ID, "method": NAME, "args": [...], "timeout_s": T, "background": bool}
             -> {"result": "ok"|"raised"|"hung", "value": ..., "elapsed": S} or {"task": N}
  join       {"task": N, "timeout_s": T}              -> as call
  state      {"id": ID, "attrs": [NAME, ...], "processes": bool, "pids": [PID, ...],
              "sockets": bool}
             -> socket, attributes, threads, ...; children and zombies, connections
  inspect    {"class": NAME or SPEC, "attrs": [...], "subclass_of": [...]} -> {"mro": ..., ...}
  set        {"id": ID, "attrs": {NAME: VALUE, ...}}   -> sets them on the server instance
  settimeout {"id": ID, "seconds": S or null}        -> settimeout(S) on the server's socket
  with       {"id": ID, "timeout_s": T}               -> runs `with server: pass`, as call
  stop       {"id": ID, "timeout_s": T, "shutdown_s": S}
                                                      -> {"shutdown": ..., "close": ...,
                                                          "serve_forever_exited": bool,
                                                          "forced": [...], "stranded": [...],
                                                          ...} (module ``teardown``)
  quit                                                -> the agent exits
Every reply carries "ok" and the request's "seq"; a failed op answers {"ok": false,
"error": ..., "traceback": ...}. The ops are the ``op_*`` methods of ``state.Agent``; the
"events" op answers with the events that handlers and server methods emit (module ``events``).
"""

import _thread
import json
import os
import select
import socket
import time
import traceback

PROTOCOL_VERSION = 1

# Captured before any prelude runs: a monkey-patched select (eventlet's) may never wake
# for a pipe, so the agent polls with the real one and sleeps with whatever time.sleep is,
# which a patched library turns into a cooperative yield.
_REAL_SELECT = select.select
# Likewise the real read: eventlet's os.read() waits in the hub, where a serve_forever()
# thread may fork; the forked handler's process would then wake inside that read, past the
# check of the pid below, and take (or block on) the kit's next request.
_REAL_READ = os.read
_IDLE_SLEEP_MAX = 0.02
# What gevent's and eventlet's monkey-patching replace, as the standard library has them.
_ORIGINALS = ((time, "sleep", time.sleep), (select, "select", select.select),
              (socket, "socket", socket.socket),
              (_thread, "start_new_thread", _thread.start_new_thread))


def jsonable(value):
    """``value`` as JSON can carry it: tuples become lists, bytes {"bytes": hex}, and any
    other object its repr."""
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def hello_failure(stage, exc):
    """The hello that says the agent could not start: call it in the ``except`` block."""
    return {"op": "hello", "ok": False, "stage": stage,
            "error": "%s: %s" % (type(exc).__name__, exc),
            "traceback": traceback.format_exc()}


class Writer(object):
    """The agent's end of the kit's pipe: one JSON object per line."""

    def __init__(self, out):
        self._out = out
        self._pid = os.getpid()

    def send(self, message):
        if os.getpid() != self._pid:
            # A forked handler's copy of a green thread that was answering the kit.
            return
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()


def cooperative():
    """Whether the prelude or the implementation monkey-patched the standard library, as
    gevent and eventlet do: threads are then green threads taking turns in one OS thread,
    and a read that blocks would stop every one of them."""
    return any(getattr(module, name, None) is not original
               for module, name, original in _ORIGINALS)


def read_lines(fd):
    """Lines from the kit, read without ever blocking a cooperative scheduler.

    With real threads, a read that blocks costs nothing and wakes when the kit writes.
    Monkey-patched, the agent polls instead: under gevent or eventlet a forked handler
    inherits this loop as a green thread, and in such a child it only idles (the child ends
    with os._exit), so that only the agent itself ever reads the kit's requests and
    answers them."""
    if cooperative():
        return _polled_lines(fd)
    return _blocking_lines(fd)


def _blocking_lines(fd):
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line


def _polled_lines(fd):
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
            chunk = _REAL_READ(fd, 65536)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield line


def dispatch(agent, request):
    """The reply of ``agent``'s ``op_<op>`` method to ``request``, with "ok"."""
    handler = getattr(agent, "op_" + request.get("op", ""), None)
    if handler is None:
        return {"ok": False, "error": "unknown op %r" % (request.get("op"),)}
    try:
        reply = handler(request)
    except Exception as exc:
        return {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc),
                "traceback": traceback.format_exc()}
    reply["ok"] = True
    return reply


def serve(agent, fd, writer):
    """Answer the requests read from ``fd`` until the kit says quit or closes the pipe."""
    for line in read_lines(fd):
        request = json.loads(line.decode("utf-8"))
        if request.get("op") == "quit":
            break
        reply = dispatch(agent, request)
        reply["seq"] = request.get("seq")
        writer.send(reply)
