"""What the agent changes in the target's runtime, and why.

Only to keep a defect of the target's own stack, shown by a committed reproduction without
the kit, from deciding verdicts about socketserver at random. The hello names each one
applied, and the reports show it.
"""

import sys

# greenlet (which eventlet and gevent run on) can crash the interpreter in an optional part
# of the cleanup it does after an OS thread that used it has ended: a greenlet freed twice
# when the collector runs in the middle (conformance/baselines/repro/
# greenlet_thread_exit_crash.py). The agent ends many such threads, as each call it bounds
# runs in a thread of its own, so that a harness crashed in about one run of the catalog in
# twenty on eventlet-green. Off, that cleanup leaves what it would have freed to leak, a
# main greenlet per ended thread at most; nothing a contract observes.
GREENLET_CLEANUP_OFF = "greenlet-optional-cleanup-off"


def apply():
    """Apply what the loaded target needs; the names of those applied."""
    applied = []
    greenlet = sys.modules.get("greenlet")
    switch = getattr(getattr(greenlet, "_greenlet", None), "enable_optional_cleanup", None)
    if switch is not None:
        switch(False)
        applied.append(GREENLET_CLEANUP_OFF)
    return applied
