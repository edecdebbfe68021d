"""The handlers' event channel: what handlers and server methods report, and its delivery.

Handlers report through a datagram socket pair, so that handlers running in forked
children report as reliably as those running in threads. Each event is one JSON object
with the fields the emitter gives plus "server", "handler" (a uid, or "server" for server
method calls), "kind", "pid", "thread", "thread_ident" and "time"; the kit receives them
unchanged through the ``events`` op.
"""

import itertools
import json
import os
import socket
import sys
import threading
import time
import traceback

# The fields every event has (Reporter.emit sets them).
EVENT_FIELDS = ("server", "handler", "kind", "pid", "thread", "thread_ident", "time")


class Reporter(object):
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


def open_channel(deliver):
    """A Reporter for handlers, and a thread of this process that passes each event the
    Reporter sends, decoded, to ``deliver``. The agent opens it after the prelude ran, so
    under gevent or eventlet the socket pair and the thread are green ones."""
    receiver, sender = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    if hasattr(os, "register_at_fork"):
        # Under gevent or eventlet a forked handler inherits the drain thread as a
        # green thread waiting in recv(): without its own copy of the receiving end,
        # it can never take a report meant for the agent.
        os.register_at_fork(after_in_child=receiver.close)
    drain = threading.Thread(target=_drain, args=(receiver, os.getpid(), deliver),
                             name="conformance-drain")
    drain.daemon = True
    drain.start()
    return Reporter(sender)


def _drain(receiver, owner, deliver):
    # One buffer for every report: recv(1 MiB) would allocate (and give back) a megabyte
    # per report, which costs more than the rest of receiving it.
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while True:
        if os.getpid() != owner:
            # A forked handler's copy of this (green) thread must not steal reports.
            return
        try:
            size = receiver.recv_into(buffer)
        except OSError:
            return
        data = bytes(view[:size])
        event = _decoded(data)
        if event is None:
            # Not the Reporter's: a target that found the socket and wrote into it.
            sys.stderr.write("conformance harness: ignored a report that is not the "
                             "agent's: %r\n" % (data[:80],))
            continue
        deliver(event)


def _decoded(data):
    """The event a datagram carries, or None if it is not one the Reporter sent."""
    try:
        event = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(event, dict) or not all(key in event for key in EVENT_FIELDS):
        return None
    return event
