"""The server classes the agent starts: subclasses of the implementation's own, whose
request-handling methods report each call as a "call" event (and some their return, as a
"returned" event) and which carry the class attributes the kit asked for."""

import socket
import sys

from .protocol import jsonable

# Server methods whose calls are reported, in the order the documentation describes them.
SERVER_HOOKS = (
    "get_request", "verify_request", "process_request", "finish_request",
    "shutdown_request", "close_request", "handle_error", "handle_timeout", "server_close",
)
# Those whose return (or exception) is reported too, as a "returned" event: once
# shutdown_request() has returned, the server is done with the request and its connection.
RETURNS_REPORTED = ("shutdown_request",)


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


def _reporting_hook(cls, name, server_id, reporter, options):
    original = getattr(cls, name)

    def hook(self, *args):
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
