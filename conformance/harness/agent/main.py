"""The agent's run: parse the command line, run the prelude, import the implementation (and
the user's handler), say hello, then answer the kit's requests until it says quit."""

import argparse
import os
import sys

from . import forks, protocol
from .handlers import user_handler_kind
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


def main(argv=None):
    """Run the agent; the exit status (3: the target could not be loaded)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", default="socketserver")
    parser.add_argument("--prelude", default="")
    parser.add_argument("--handler", default="")
    args = parser.parse_args(argv)
    # The protocol keeps the real stdout; whatever the implementation prints goes to stderr.
    writer = protocol.Writer(os.fdopen(os.dup(1), "w"))
    os.dup2(2, 1)
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
    if failure is not None:
        writer.send(failure)
        return 3
    agent = Agent(module)
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
