"""The agent's run: parse the command line, run the prelude, import the implementation (and
the user's handler and server classes), say hello, then answer the kit's requests until it
says quit."""

import argparse
import faulthandler
import os
import sys

from . import forks, protocol
from .handlers import user_handler_kind
from .instrumentation import server_kind
from .loading import import_attribute, import_module
from .state import Agent


def _load(impl, prelude):
    """(the implementation, None), or (None, the hello that says what failed)."""
    stage = "prelude"
    try:
        if prelude:
            import_attribute(prelude)()
        stage = "import"
        return import_module(impl), None
    except BaseException as exc:
        return None, protocol.hello_failure(stage, exc)


def _load_server_classes(module, specs):
    """({spec: class}, None) for the user's own server classes, each a subclass of one of
    ``module``'s base servers; or (partial, the hello that says which failed and why)."""
    loaded = {}
    for spec in specs:
        try:
            loaded[spec] = import_attribute(spec)
            server_kind(module, loaded[spec])
        except BaseException as exc:
            failure = protocol.hello_failure("server-class", exc)
            failure["spec"] = spec
            return loaded, failure
    return loaded, None


def main(argv=None):
    """Run the agent; the exit status (3: the target could not be loaded)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", default="socketserver")
    parser.add_argument("--prelude", default="")
    parser.add_argument("--handler", default="")
    parser.add_argument("--server-class", action="append", default=[])
    args = parser.parse_args(argv)
    # The protocol keeps the real stdout; whatever the implementation prints goes to stderr.
    writer = protocol.Writer(os.fdopen(os.dup(1), "w"))
    os.dup2(2, 1)
    # A target that crashes the interpreter (a segfault in a C extension, a greenlet
    # switched across threads) leaves its Python traceback in the stderr the kit reports.
    faulthandler.enable(all_threads=True)
    # Before the prelude and the import, so that they see only the capped os.fork.
    forks.install()
    # Import the implementation from the user's folder, never from the kit's: __main__
    # took the agent's folder off sys.path, this puts the user's in its place.
    sys.path.insert(0, os.getcwd())
    module, failure = _load(args.impl, args.prelude)
    handler_kind = None
    if failure is None and args.handler:
        try:
            handler_kind = user_handler_kind(import_attribute(args.handler))
        except BaseException as exc:
            failure = protocol.hello_failure("handler", exc)
    user_servers = {}
    if failure is None:
        user_servers, failure = _load_server_classes(module, args.server_class)
    if failure is not None:
        writer.send(failure)
        return 3
    agent = Agent(module, user_servers)
    hello = agent.hello()
    hello["user_handler"] = handler_kind
    writer.send(hello)
    try:
        protocol.serve(agent, sys.stdin.fileno(), writer)
    finally:
        # Told to quit, or the kit is gone (its requests end, or a reply to it fails):
        # nothing the target forked outlives the agent.
        forks.end_group()
    return 0
