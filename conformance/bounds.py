"""Every wait the kit makes, in seconds, in one place.

A target that needs longer than these is reported as failing the contract under test,
with the bound in the message; nothing the kit does waits without one.

On a busy machine (a shared CI runner) the bounds that are last resorts grow by one factor,
``--timeout-scale`` or the ``CONFORMANCE_TIMEOUT_SCALE`` environment variable (see
``GROW_UNDER_LOAD``). What a contract asks of the target does not change with it: the
durations the kit itself makes (a stalled client's silence, a slow handler's sleep, the
timeout it sets on a handler, a poll_interval) stay as they are.
"""

import os

# A handler instance reports setup/handle/finish within this after its client is done.
HANDLER_REPORT = 5.0
# After a half-close, the client must read EOF within this.
EOF = 5.0
# After finish(), a handler's own thread or forked process must have ended within this.
HANDLER_EXIT = 3.0
# A datagram's reply must arrive within this.
DATAGRAM_REPLY = 3.0
# Once the harness reports that the server is done with a client's requests (their handlers
# have finished; for a client that waits for EOF, the server has shut the connection down),
# the client goes on reading what is still in flight for this long, and longer while bytes
# keep arriving, then stops: a wait for a reply, an EOF or a handler's report lasts about
# as long as the handler took. The bound of the wait itself stays the last resort.
AFTER_HANDLER_GRACE = 0.25
# The same for a datagram client: a datagram reply is one sendto() that the handler made
# before it finished, already in the client's queue on loopback when the harness reports the
# handler's end; the grace only covers the report overtaking it.
DATAGRAM_GRACE = 0.05
# While nothing arrives, a waiting client asks the harness this often whether the server
# is done with its requests.
SERVED_CHECK = 0.05
# Echoing a burst of clients: a fixed allowance plus a per-MiB one.
ECHO_BASE = 10.0
ECHO_PER_MIB = 5.0
# How long the stalled client stays silent: "a second or more".
STALL = 1.2
# While one client stalls, the others must be fully served within this.
OTHERS_SERVED = 5.0
# In a line protocol, the reply to one line must reach the waiting client within this.
LINE_REPLY = 3.0
# After the server has seen a request it refuses, its client waits this long for anything
# (a reply, EOF, a reset) before concluding that nothing comes.
REFUSED_SILENCE = 0.3
# The StreamRequestHandler.timeout the kit sets; a client silent this long is timed out.
STREAM_HANDLER_TIMEOUT = 0.5
# How much earlier than a socket timeout the kit still accepts it to fire (clock rounding).
TIMEOUT_SLACK = 0.05
# A client the server is serving has the echo of everything it sent within this.
SERVED_ECHO = 5.0
# A wait for the server that lasts longer than this first asks the harness whether
# serve_forever() still runs, then asks again every second.
SERVE_LOOP_CHECK = 0.2
# When a run of client patterns ends, its clients together finish their conversations
# within this.
WIND_DOWN = 10.0
# A server method the kit calls (server_bind(), fileno(), the with statement, ...) returns
# within this, unless the contract under test sets a bound of its own.
SERVER_CALL = 5.0
# Stopping a server: shutdown() and server_close() each return within this, and the
# serve_forever() that shutdown() stops has returned within this of it.
STOP = 5.0
# How long a deliberately slow handler sleeps when the kit checks what waits for it
# (server_close(), max_children); well under the STOP a server_close() may take.
SLOW_HANDLER = 1.5
# After its handler has finished, a forked child is reaped (no zombie left) within this.
CHILD_REAPED = 3.0
# A serve_forever() loop reacts (to shutdown(), to the end of a poll) within its
# poll_interval plus this; generous, for a machine under load.
LOOP_SLACK = 1.0
# shutdown() returns within the loop's poll_interval plus this: the contract's own bound,
# tighter than LOOP_SLACK, yet many times what waking a thread takes.
SHUTDOWN_SLACK = 0.5
# handle_request() with a timeout and no client returns within that timeout plus this;
# generous, as LOOP_SLACK: the harness's answer is part of the wait, and CI's self-test,
# a dozen kit processes on two cores, once took more than a second to give it.
HANDLE_TIMEOUT_SLACK = 2.0
# How long the kit watches for something that must not happen (a second request handled
# by one handle_request(), a request handled after shutdown()) before concluding it did not.
QUIET = 0.3
# How long a new client watches for an echo it must not get while a forking server runs
# more children than its max_children (a fork takes milliseconds; this allows for load).
OVER_LIMIT_WATCH = 1.0
# A connection to a server that accepts none completes within this, unless its listen()
# backlog is full (on loopback it completes within connect() itself).
QUEUED_CONNECT = 0.2
# The poll_interval of a serve_forever() that shutdown() interrupts while clients arrive:
# long, so that those clients arrive while its select() still waits.
LATE_CLIENT_POLL = 3.0
# The longest the kit watches an idle serve_forever() counting its service_actions() calls.
IDLE_LOOP = 1.0


# The harness says hello (its interpreter started, the prelude ran, the implementation was
# imported) within this.
HARNESS_START = 60.0
# Beyond the wait a request asks of it, the harness answers within this.
HARNESS_ANSWER = 10.0
# Told to quit, the harness exits within this before it is killed; killed, it is gone
# within HARNESS_KILLED; its output closed, its exit status is there within HARNESS_EXIT.
HARNESS_QUIT = 3.0
HARNESS_KILLED = 5.0
HARNESS_EXIT = 2.0
# --coverage: the target's interpreter says which coverage.py it has within this, and
# coverage.py combines the run's data and writes its reports within COVERAGE_REPORT (a whole
# catalog on forking servers leaves thousands of data files: a file per forked child).
COVERAGE_CHECK = 60.0
COVERAGE_REPORT = 600.0
# A stream client connects within this.
CONNECT = 5.0
# The longest Hypothesis spends shrinking one test's failing example. Past it the report
# shows the smallest failing example found so far and says that shrinking stopped early: a
# target that fails every example the same way (nothing comes back) would otherwise have
# Hypothesis shrink through hundreds of examples that each wait out a bound.
SHRINK_BUDGET = 10.0


# The bounds that --timeout-scale multiplies: waits for something the target must do, and
# the windows in which the kit watches for something it must not do (a longer window only
# makes that watch stricter).
GROW_UNDER_LOAD = (
    "HANDLER_REPORT", "EOF", "HANDLER_EXIT", "DATAGRAM_REPLY", "AFTER_HANDLER_GRACE",
    "DATAGRAM_GRACE",
    "ECHO_BASE", "ECHO_PER_MIB", "OTHERS_SERVED", "LINE_REPLY", "REFUSED_SILENCE",
    "SERVED_ECHO", "WIND_DOWN", "SERVER_CALL", "STOP", "CHILD_REAPED", "LOOP_SLACK",
    "SHUTDOWN_SLACK", "HANDLE_TIMEOUT_SLACK", "QUIET", "OVER_LIMIT_WATCH", "QUEUED_CONNECT",
    "HARNESS_START", "HARNESS_ANSWER", "HARNESS_QUIT", "HARNESS_KILLED", "HARNESS_EXIT",
    "CONNECT", "SHRINK_BUDGET", "COVERAGE_CHECK", "COVERAGE_REPORT",
)
SCALE_ENV = "CONFORMANCE_TIMEOUT_SCALE"
_UNSCALED = {name: globals()[name] for name in GROW_UNDER_LOAD}


def scale_from_environment() -> float:
    """The factor ``CONFORMANCE_TIMEOUT_SCALE`` sets (1 when unset); ValueError names the
    variable when its value is not a positive number."""
    text = os.environ.get(SCALE_ENV, "").strip()
    if not text:
        return 1.0
    return check_scale(text, SCALE_ENV)


def check_scale(text: str, source: str) -> float:
    """``text`` as a scale factor; ValueError, naming ``source``, unless a positive number."""
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not factor > 0 or factor == float("inf"):
        raise ValueError(f"{source} {text}: must be a positive number, e.g. 2 on a busy "
                         "machine")
    return factor


def set_scale(factor: float) -> None:
    """Multiply every bound of ``GROW_UNDER_LOAD`` by ``factor`` (from its own value: set
    twice, the second factor is the one in force)."""
    for name, value in _UNSCALED.items():
        globals()[name] = value * factor


def echo_timeout(total_bytes: int) -> float:
    """The bound on echoing ``total_bytes`` across all clients of one example."""
    return ECHO_BASE + ECHO_PER_MIB * total_bytes / (1 << 20)
