"""Coverage of the implementation under test, measured here in the harness (``--coverage``).

coverage.py runs in the target's own interpreter, so that what it records is what that
interpreter ran. The agent imports it only when the kit asks (``--coverage-data``): without
it, the agent uses the standard library only.

What is measured, and how:
  files     the implementation's source file, found before it is imported so that its
            module-level lines count, and the files the kit's ``--coverage-include`` globs
            name; lines and branches.
  threads   every thread started after measuring began (coverage.py's thread
            concurrency), and the green threads of gevent or eventlet when the prelude
            monkey-patched the standard library with one of them.
  children  a process the target forks keeps the tracer it inherited, so that the rest of
            the frame that called fork() is measured too (a fresh tracer would see only the
            frames called after it started), and saves its data as it ends: before
            os._exit(), which skips atexit and which ForkingMixIn's child always ends with,
            or at exit otherwise. A child killed before that is not counted.
  contexts  what runs after switch() is recorded under the context the kit names: one per
            contract and server class.
Data goes to parallel files, ``DATA_FILE.<host>.<pid>.<random>``, one per process, which the
kit combines at the end of the run. coverage.py writes what it collected into its file at
each switch(), so a harness the kit has to kill loses only what ran since the last one.
"""

import atexit
import os
import re
import socket
import sys
import traceback

# The oldest coverage.py with dynamic contexts (Coverage.switch_context).
MINIMUM_VERSION = (5, 0)
# The libraries whose green threads coverage.py follows, by the top-level package of the
# socket class they monkey-patch in.
GREEN_THREADS = ("gevent", "eventlet")


class Measuring(object):
    """A running coverage.py measurement of this process and the processes it forks."""

    def __init__(self, cov):
        self._cov = cov
        self._context = None

    def switch(self, context):
        """Record what runs from now on under ``context``."""
        if context != self._context:
            self._cov.switch_context(context)
            self._context = context

    def save(self):
        """Write what this process measured to its own data file. Never raises: a process
        that ends must end, and the agent must still end what the target forked."""
        try:
            self._cov.save()
        except Exception:
            sys.stderr.write("conformance harness: could not save coverage data of process "
                             "%d:\n%s" % (os.getpid(), traceback.format_exc()))


def _concurrency():
    """Threads, and the green threads of the library that patched ``socket.socket``."""
    patched_by = (getattr(socket.socket, "__module__", None) or "").split(".")[0]
    return ["thread"] + [name for name in GREEN_THREADS if name == patched_by]


def _version(coverage):
    """(major, minor) of coverage.py: 7.4.0 and 7.4b1 are (7, 4)."""
    return tuple(int(re.match(r"\d*", part).group() or 0)
                 for part in coverage.__version__.split(".")[:2])


def start(data_file, include):
    """Measure ``include`` (file paths or globs) from now on, in this process and its
    children; the Measuring. RuntimeError when coverage.py is missing, too old, or there
    is nothing to measure."""
    try:
        import coverage
    except ImportError:
        raise RuntimeError("coverage.py is not installed for this interpreter") from None
    if _version(coverage) < MINIMUM_VERSION:
        raise RuntimeError("coverage.py %s is older than %d.%d" % (
            coverage.__version__, MINIMUM_VERSION[0], MINIMUM_VERSION[1]))
    if not include:
        raise RuntimeError("the implementation has no source file to measure; name its "
                           "files with --coverage-include")
    # config_file=False: the user's own configuration (a .coveragerc, or a pyproject.toml
    # with ``source``) must not change what the kit measures.
    cov = coverage.Coverage(data_file=data_file, data_suffix=True, config_file=False,
                            branch=True, include=list(include),
                            concurrency=_concurrency())
    cov.start()
    measuring = Measuring(cov)
    _measure_children(measuring)
    return measuring


def _measure_children(measuring):
    """Make every process forked from now on save its data as it ends.

    os.fork is wrapped rather than hooked with os.register_at_fork, which Python 3.6
    lacks; the agent and the target look it up on ``os`` at each call, after this ran."""
    fork = os.fork
    real_exit = os._exit

    def saving_exit(status):
        measuring.save()
        real_exit(status)

    def measured_fork():
        pid = fork()
        if pid == 0:
            os._exit = saving_exit
            atexit.register(measuring.save)
        return pid

    os.fork = measured_fork
