"""Stopping a server at the end of a test, whatever its shutdown() and server_close() do.

The agent calls shutdown() and server_close() as the documentation says, each bounded. When
one of them fails (raises, hangs, returns with serve_forever() still running or the socket
still open), the agent ends the loop and closes the socket by other means and says what it
did: how a server stops is the business of the contracts that check it, and a test that
only needs its server gone must not inherit their failure. What even those means cannot end
is named in the reply (``stranded``), so that the kit replaces the whole harness.
"""

import contextlib
import time

from .tasks import Task

# BaseServer's flag that serve_forever() polls (``self.__shutdown_request``, name-mangled):
# setting it is what the stdlib's shutdown() does before it waits for the loop.
SHUTDOWN_FLAG = "_BaseServer__shutdown_request"
# How often the agent sets that flag again while a loop still runs: a stdlib loop clears it
# as it returns, and another loop of the same server may still be running.
FLAG_EVERY = 0.05


def _running(threads):
    return [thread for thread in threads if thread.is_alive()]


def _joined(threads, timeout):
    """Whether every thread has ended within ``timeout`` seconds."""
    deadline = time.time() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.time()))
    return not _running(threads)


def _set_flag(server):
    with contextlib.suppress(Exception):
        setattr(server, SHUTDOWN_FLAG, True)


def close_socket(server):
    """Close the server's socket if it is still open; whether it was."""
    sock = getattr(server, "socket", None)
    try:
        if sock is None or sock.fileno() < 0:
            return False
        sock.close()
    except Exception:
        return False
    return True


def close_all(sockets):
    """Close each of ``sockets``, whatever state it is in."""
    for sock in sockets:
        with contextlib.suppress(Exception):
            sock.close()


def _end_loops(server, loops, timeout):
    """End the serve_forever() loops that shutdown() left running: set the stdlib's
    shutdown flag; if that is not enough, close the listening socket too, so that the
    loop's select() or accept() fails. The means used, in order."""
    forced = []
    for means in ("shutdown_request", "socket"):
        forced.append(means)
        if means == "socket":
            close_socket(server)
        deadline = time.time() + timeout
        while _running(loops) and time.time() < deadline:
            _set_flag(server)
            _running(loops)[0].join(min(FLAG_EVERY, max(0.0, deadline - time.time())))
        if not _running(loops):
            break
    return forced


def stop(server, serving, loops, tasks, timeout, shutdown_wait=None, owned=()):
    """Stop ``server``: shutdown() if a serve_forever() (one of ``loops``) ever ran, each
    loop's end, server_close(), each bounded by ``timeout`` seconds (shutdown() by
    ``shutdown_wait``, if given), with the means above where they fail. ``tasks`` are the
    server's calls still running, if any; ``owned``, the sockets the agent opened for the
    server itself, which it closes after server_close() (so that the server's socket, one
    of them, is not counted as left open by server_close(): closing it is the agent's
    business). The stop op's reply (see the protocol module)."""
    shutdown_wait = timeout if shutdown_wait is None else shutdown_wait
    reply = {"shutdown": "not serving", "forced": [], "shutdown_waited": shutdown_wait}
    calls = list(tasks)
    grace = timeout
    if serving:
        shutdown = Task(lambda: server.shutdown(), "shutdown()")
        calls.append(shutdown)
        outcome = shutdown.wait(shutdown_wait)
        reply["shutdown"] = outcome["result"]
        reply["shutdown_error"] = outcome.get("error")
        # A shutdown() that raised will not stop the loop now; one that hung had its time.
        grace = timeout if outcome["result"] == "ok" else 0.0
    reply["serve_forever_exited"] = _joined(loops, grace)
    if not reply["serve_forever_exited"]:
        reply["forced"] = _end_loops(server, loops, timeout)
    reply["serve_forever_stopped"] = not _running(loops)
    close = Task(lambda: server.server_close(), "server_close()")
    calls.append(close)
    outcome = close.wait(timeout)
    reply["close"] = outcome["result"]
    reply["close_error"] = outcome.get("error")
    close_all(owned)
    reply["socket_left_open"] = close_socket(server)
    # A shutdown() that waited for the loop may return now that the loop has ended.
    _joined([call.thread for call in calls], 0.1 if calls else 0.0)
    reply["stranded"] = ([thread.name for thread in _running(loops)]
                         + [call.thread.name for call in calls if call.running()])
    return reply
