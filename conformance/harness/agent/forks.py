"""The processes the agent and the target fork: a cap on how many may run, and their end.

The agent leads its own process group (the kit starts it in a new session), and everything
the target forks stays in that group. ``os.fork`` is wrapped before the prelude and the
implementation are loaded: every CENSUS_EVERY forks, counted across the whole group, the
forking process counts the group's running processes, and at CAP a target is taken to fork
without bound. That process then says so on stderr and kills the whole group, the agent
included: the kit sees the harness exit, fails the contract under test with that message
and starts a fresh harness. (Running as root, RLIMIT_NPROC would not bind; and it counts
every process of the user, not those of one harness.)

When the agent ends, it kills the processes left in its group, so that nothing the target
forked outlives it, even when the kit itself was killed and could not do it.
"""

import contextlib
import mmap
import os
import signal
import struct

from .inspection import _stat_fields as stat_fields

# Running processes in the agent's process group, the agent itself included, at which the
# target is taken to fork without bound. A forking server runs at most max_children
# handlers at once (40 by default); the kit's contracts run a few.
CAP = 128
# How many forks, across the group, between two counts of its processes.
CENSUS_EVERY = 16
_COUNTER = struct.Struct("q")


def group_members(pgid):
    """The pids of the running (not exited) processes in process group ``pgid``."""
    members = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return members
    for name in names:
        if not name.isdigit():
            continue
        try:
            fields = stat_fields(name)
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(name))
    return members


class ForkGuard(object):
    """``os.fork`` with a cap on the running processes of the caller's process group."""

    def __init__(self, fork, cap=CAP):
        self._fork = fork
        self._cap = cap
        self._pgid = os.getpgid(0)
        # Anonymous and shared: every forked process counts in the same place.
        self._forks = mmap.mmap(-1, _COUNTER.size)

    def fork(self):
        # Read and written without a lock: a count lost to a race only delays a census.
        forks = _COUNTER.unpack(self._forks[:_COUNTER.size])[0] + 1
        if forks >= CENSUS_EVERY:
            forks = 0
            running = len(group_members(self._pgid))
            if running >= self._cap:
                self._give_up(running)
        self._forks[:_COUNTER.size] = _COUNTER.pack(forks)
        return self._fork()

    def _give_up(self, running):
        message = ("conformance harness: the target forked without bound: %d processes ran "
                   "in the harness's process group, the harness's cap (%d); it killed them "
                   "all\n" % (running, self._cap))
        try:
            os.write(2, message.encode("utf-8"))
        finally:
            os.killpg(self._pgid, signal.SIGKILL)


def install():
    """Cap the processes forked from now on in this process and its children."""
    os.fork = ForkGuard(os.fork).fork


def end_group():
    """Kill every other process of this process's group: what the target forked."""
    pgid = os.getpgid(0)
    if pgid != os.getpid():
        # Not the group's leader (started by hand, not by the kit): the group is not ours.
        return
    for pid in group_members(pgid):
        if pid != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
