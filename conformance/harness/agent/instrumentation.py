"""The server classes the agent starts: subclasses of the implementation's own (or of a
user's own server class, or of a bare BaseServer), whose request-handling methods report each
call as a "call" event (and some their return, as a "returned" event) and which carry the
class attributes the kit asked for; and the documented class a user's own server class runs
as."""

import os
import socket
import sys
import threading
import time

from .protocol import jsonable

# Server methods whose calls are reported, in the order the documentation describes them.
SERVER_HOOKS = (
    "get_request", "verify_request", "process_request", "finish_request",
    "shutdown_request", "close_request", "handle_error", "handle_timeout", "server_close",
)
# The listen() backlog of a bare BaseServer's socket: TCPServer's request_queue_size.
BARE_BACKLOG = 5
# Those whose return (or exception) is reported too, as a "returned" event: once
# shutdown_request() has returned, the server is done with the request and its connection.
RETURNS_REPORTED = ("shutdown_request",)


# The four base servers, each before the ones it derives from: UnixDatagramServer derives
# from UDPServer, UDPServer and UnixStreamServer from TCPServer.
BASE_SERVERS = ("UnixDatagramServer", "UDPServer", "UnixStreamServer", "TCPServer")
# The documented mixins, by the prefix of the pre-defined classes that use them.
MIXINS = (("Threading", "ThreadingMixIn"), ("Forking", "ForkingMixIn"))


def server_kind(module, cls):
    """The name of the documented server class of ``module`` that ``cls`` corresponds to:
    the base server it derives from (the most derived of the four), prefixed with
    "Threading" or "Forking" when it derives from that mixin (the first of them in its
    lookup order), e.g. "ThreadingTCPServer" for http.server.ThreadingHTTPServer.
    TypeError if ``cls`` is no subclass of any of the four base servers."""
    if not isinstance(cls, type):
        raise TypeError("%r is not a class" % (cls,))
    base = next((name for name in BASE_SERVERS if _derives(cls, getattr(module, name, None))),
                None)
    if base is None:
        raise TypeError("%s derives from none of %s's %s: the kit checks a server class as "
                        "the documented one it derives from" % (
                            cls.__name__, module.__name__, ", ".join(reversed(BASE_SERVERS))))
    for ancestor in cls.__mro__:
        for prefix, mixin in MIXINS:
            if ancestor is getattr(module, mixin, None):
                return prefix + base
    return base


def _derives(cls, base):
    return isinstance(base, type) and issubclass(cls, base)


def _call_fields(name, args):
    """The fields of the "call" event for ``name`` called with ``args``."""
    fields = {"method": name}
    if name == "handle_error":
        error = sys.exc_info()[1]
        fields["error_type"] = type(error).__name__ if error is not None else None
        fields["client_address"] = jsonable(args[1]) if len(args) > 1 else None
    elif name in ("verify_request", "process_request", "finish_request"):
        fields["client_address"] = jsonable(args[1])
    return fields


# In a process forked from the agent, the ident of the thread that forked; None in the agent.
_FORKED_BY = [None]


def _note_forking_thread():
    _FORKED_BY[0] = threading.get_ident()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_note_forking_thread)


def _copied_into_child():
    """Whether this thread is, in a process forked from the agent, the copy of one of the
    agent's threads other than the one that forked: under gevent or eventlet green threads
    survive fork(), so a forked handler's process runs the serve_forever() loops of the
    agent's other servers too, and without this they would take those servers' requests."""
    return _FORKED_BY[0] is not None and threading.get_ident() != _FORKED_BY[0]


def _reporting_hook(cls, name, server_id, reporter, options):
    original = getattr(cls, name)

    def hook(self, *args):
        if name == "get_request" and _copied_into_child():
            # A copy of another server's loop in a forked handler's process: it leaves that
            # server's connections and datagrams to the agent; the process ends with its
            # handler (os._exit).
            while True:
                time.sleep(3600)
        reporter.emit(server_id, "server", "call", **_call_fields(name, args))
        if name == "verify_request" and options.get("verify") is False:
            return False
        if name not in RETURNS_REPORTED:
            return original(self, *args)
        try:
            return original(self, *args)
        finally:
            reporter.emit(server_id, "server", "returned", method=name)

    hook.__name__ = name
    return hook


def _counting_service_actions(original):
    def service_actions(self):
        self.conformance_service_actions = getattr(
            self, "conformance_service_actions", 0) + 1
        return original(self)

    return service_actions


def instrumented_server(cls, server_id, reporter, options):
    """``cls`` with its request-handling methods reporting their calls, a count of its
    service_actions() calls, and the attributes the kit asked for (timeout,
    daemon_threads, block_on_close, max_children, ...)."""
    # The module the class had when the agent was a single script: the setup event's
    # server_type, and the kit's messages that quote it, name it __main__.NAME.
    namespace = {"__module__": "__main__"}
    for name in SERVER_HOOKS:
        if hasattr(cls, name):
            namespace[name] = _reporting_hook(cls, name, server_id, reporter, options)
    if hasattr(cls, "service_actions"):
        namespace["service_actions"] = _counting_service_actions(cls.service_actions)
    namespace.update(options.get("attrs", {}))
    if options.get("family") == "inet6":
        namespace["address_family"] = socket.AF_INET6
    return type(cls.__name__, (cls,), namespace)


def recording_server(cls, made, closes):
    """``cls``, appending its instance to ``made`` as its constructor begins (so that it is
    there to look at when the constructor raises) and each server_close() call to
    ``closes``."""

    def __init__(self, *args, **kwargs):
        made.append(self)
        cls.__init__(self, *args, **kwargs)

    def server_close(self):
        closes.append(time.time())
        return cls.server_close(self)

    return type(cls.__name__, (cls,), {"__module__": "__main__", "__init__": __init__,
                                       "server_close": server_close})


def bare_base_server(module, owned):
    """A direct subclass of ``module``'s BaseServer that supplies only what BaseServer
    leaves to its subclasses: a TCP socket bound to ``server_address`` and listening (done
    here, as BaseServer's own server_activate() does nothing), which fileno() returns and
    get_request() accepts from. Everything else is BaseServer's own, server_activate(),
    shutdown_request(), close_request() and server_close() included. The socket and every
    connection it accepts are appended to ``owned``: BaseServer's close_request() and
    server_close() close nothing, so the agent closes them itself."""
    base = module.BaseServer

    class BareBaseServer(base):
        def __init__(self, server_address, RequestHandlerClass):
            # BaseServer's handle_request() reads the timeout of self.socket.
            self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            owned.append(self.socket)
            self.socket.bind(server_address)
            self.socket.listen(BARE_BACKLOG)
            base.__init__(self, self.socket.getsockname(), RequestHandlerClass)

        def fileno(self):
            return self.socket.fileno()

        def get_request(self):
            connection, client_address = self.socket.accept()
            owned.append(connection)
            return connection, client_address

    return BareBaseServer
