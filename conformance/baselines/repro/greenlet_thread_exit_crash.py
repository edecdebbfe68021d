"""An OS thread that ran a server of eventlet.green.SocketServer can crash the whole
interpreter after it ends. A reproduction without the kit, for eventlet-green.

serve_forever() of the green module uses green threading primitives, so the OS thread that
runs it gets an eventlet hub (and, with it, greenlet's per-thread state) that outlives the
call. When the thread ends, greenlet destroys that state later, in the main thread, and an
optional part of that cleanup (a search with gc.get_referrers() for a reference to the dead
thread's main greenlet) holds a borrowed pointer to the greenlet while it allocates: a
garbage collection in between frees the greenlet, and greenlet frees it a second time.
The interpreter dies of SIGSEGV in green_dealloc(), called from ThreadState::~ThreadState
(seen with greenlet 3.5.6, eventlet 0.41.3, CPython 3.11; a core dump of the kit's harness
showed the same stack). When it happens depends on when the collector runs: the target's
own non-determinism.

Three observations:

1. As socketserver's users drive it: serve_forever() in a threading.Thread, shutdown()
   from another. When serve_forever() ends it sets a green Event, which schedules the
   waiting shutdown() on the serving thread's hub, creating that hub (the baseline's
   shutdown-across-hubs cause: the hub never runs, so shutdown() never returns). The
   serving thread ends with the hub it never ran, whose greenlet refers to the thread's
   main greenlet: every trial, deterministically.
2. Threads that end so (each creates its hub, as that Event did, and ends) crash the
   interpreter: of TRIALS interpreters run at once, most die of SIGSEGV within THREADS
   threads. (With serve_forever() itself the crash is rarer, as each thread takes longer:
   the kit's harness met it in about one run of the catalog in twenty.)
3. The same with greenlet's optional cleanup turned off
   (``greenlet._greenlet.enable_optional_cleanup(False)``): no interpreter dies. This is
   what the kit's harness does (conformance/harness/agent/workarounds.py), so that a
   contract's verdict on a green target does not depend on this crash.

Run: ``python greenlet_thread_exit_crash.py`` (needs eventlet). Exit status 0 when all three
were seen.
"""

import signal
import subprocess
import sys

# Run at once: on a busy machine the collector meets the cleanup far more often (alone, on
# an idle machine, one interpreter in five dies; eight at once on two cores, most of them).
TRIALS = 8
THREADS = 2000
# Bounds each interpreter: one that crashes does so within seconds.
TRIAL_TIMEOUT = 120
LEFT_BEHIND = """
import threading, warnings
warnings.simplefilter("ignore")
import greenlet
from eventlet import hubs
from eventlet.green import SocketServer as socketserver
server = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
seen = []
def serve():
    server.serve_forever(0.01)
    hub = getattr(hubs._threadlocal, "hub", None)
    seen.append(hub is not None and not hub.greenlet
                and hub.greenlet.parent is greenlet.getcurrent())
loop = threading.Thread(target=serve)
loop.start()
threading.Thread(target=server.shutdown, daemon=True).start()
loop.join(10)
server.server_close()
print(seen == [True])
"""
THREAD_ENDS = """
import sys, threading, warnings
warnings.simplefilter("ignore")
import greenlet
from eventlet import hubs
if sys.argv[1] == "off":
    greenlet._greenlet.enable_optional_cleanup(False)
def serving_thread():
    hubs.get_hub()
for _ in range(int(sys.argv[2])):
    thread = threading.Thread(target=serving_thread)
    thread.start()
    thread.join()
"""


def _run(script, *args):
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=TRIAL_TIMEOUT)


def hub_left_behind():
    """Observation 1: True when every trial's serving thread ended with an unstarted hub."""
    for _ in range(TRIALS):
        done = _run(LEFT_BEHIND)
        if done.stdout.strip() != "True":
            return False
    return True


def crashes(cleanup):
    """Observations 2 and 3: how many of TRIALS interpreters, run at once, died of SIGSEGV,
    with greenlet's optional cleanup ``"on"`` (its default) or ``"off"``."""
    trials = [subprocess.Popen([sys.executable, "-c", THREAD_ENDS, cleanup, str(THREADS)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for _ in range(TRIALS)]
    crashed = 0
    for trial in trials:
        try:
            _, stderr = trial.communicate(timeout=TRIAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            for running in trials:
                running.kill()
            sys.exit(f"a trial ran past {TRIAL_TIMEOUT}s")
        if trial.returncode == -signal.SIGSEGV:
            crashed += 1
        elif trial.returncode != 0:
            sys.exit(f"a trial failed otherwise: {stderr[-2000:]}")
    return crashed


def main():
    left = hub_left_behind()
    on, off = crashes("on"), crashes("off")
    seen = "every trial" if left else "not in every trial"
    print(f"1. the serving thread ends with a hub it never ran: {seen}")
    print(f"2. optional cleanup on (greenlet's default): {on} of {TRIALS} interpreters died "
          "of SIGSEGV")
    print(f"3. optional cleanup off: {off} of {TRIALS}")
    return 0 if left and on and not off else 1


if __name__ == "__main__":
    sys.exit(main())
