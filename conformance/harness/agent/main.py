"""The agent's run: parse the command line, run the prelude, import the implementation (and
the user's handler and server classes), say hello, then answer the kit's requests until it
says quit."""

import argparse
import faulthandler
import os
import sys

from . import forks, measuring, protocol, workarounds
from .handlers import user_handler_kind
from .instrumentation import server_kind
from .loading import import_attribute, import_module, module_origin
from .state import Agent


def _load(args):
    """(the implementation, its Measuring or None, None), or (None, None, the hello that
    says what failed). With --coverage-data, measuring starts after the prelude, which is
    not the implementation, and before the import, whose module-level lines are."""
    stage = "prelude"
    measurement = None
    try:
        if args.prelude:
            import_attribute(args.prelude)()
        if args.coverage_data:
            # Finding the implementation's file imports its parent packages.
            stage = "import"
            origin = module_origin(args.impl)
            stage = "coverage"
            measurement = measuring.start(args.coverage_data,
                                          ([origin] if origin else []) + args.coverage_include)
        stage = "import"
        return import_module(args.impl), measurement, None
    except BaseException as exc:
        return None, None, protocol.hello_failure(stage, exc)


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


def _user_classes(module, args):
    """(the kind of the user's handler or None, the user's server classes by spec, None),
    or (None, {}, the hello that says which of them failed)."""
    handler_kind = None
    if args.handler:
        try:
            handler_kind = user_handler_kind(import_attribute(args.handler))
        except BaseException as exc:
            return None, {}, protocol.hello_failure("handler", exc)
    user_servers, failure = _load_server_classes(module, args.server_class)
    return handler_kind, user_servers, failure


def _arguments(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", default="socketserver")
    parser.add_argument("--prelude", default="")
    parser.add_argument("--handler", default="")
    parser.add_argument("--server-class", action="append", default=[])
    # --coverage: the data file to measure into, and what to measure beyond the
    # implementation's own file (module ``measuring``).
    parser.add_argument("--coverage-data", default="")
    parser.add_argument("--coverage-include", action="append", default=[])
    return parser.parse_args(argv)


def main(argv=None):
    """Run the agent; the exit status (3: the target could not be loaded)."""
    args = _arguments(argv)
    # The protocol keeps the real stdout; whatever the implementation prints goes to stderr.
    writer = protocol.Writer(os.fdopen(os.dup(1), "w"))
    os.dup2(2, 1)
    # A target that crashes the interpreter (a segfault in a C extension, a greenlet
    # switched across threads) leaves its Python traceback in the stderr the kit reports.
    faulthandler.enable(all_threads=True)
    # Before the prelude and the import, so that they see only the capped os.fork.
    forks.install()
    try:
        return _run(args, writer)
    finally:
        # Told to quit, or the kit is gone (its requests end, or a reply to it fails, the
        # hello included): nothing the target forked, even as it was imported, outlives
        # the agent.
        forks.end_group()


def _run(args, writer):
    # Import the implementation from the user's folder, never from the kit's: __main__
    # took the agent's folder off sys.path, this puts the user's in its place.
    sys.path.insert(0, os.getcwd())
    module, measurement, failure = _load(args)
    if failure is None:
        handler_kind, user_servers, failure = _user_classes(module, args)
    if failure is not None:
        writer.send(failure)
        return 3
    try:
        applied = workarounds.apply()
        agent = Agent(module, user_servers, measurement)
        hello = agent.hello()
        hello["user_handler"] = handler_kind
        hello["workarounds"] = applied
        writer.send(hello)
        protocol.serve(agent, sys.stdin.fileno(), writer)
    finally:
        if measurement is not None:
            measurement.save()
    return 0
