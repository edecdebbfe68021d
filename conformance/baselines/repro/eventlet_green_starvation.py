"""eventlet.green.SocketServer starves its own handler threads. A reproduction without the
kit, for eventlet-green's baseline.

The module greens socket, select and threading for socketserver, but not selectors, in
which serve_forever() waits: a real poll() that blocks the whole hub of its OS thread. A
ThreadingMixIn handler is a green thread of that hub, so once it has to wait for its
client it runs again only when serve_forever() next starts a handler (Thread.start()
yields to the hub). Three observations, each bounded:

1. A client that sends, reads the reply, pauses, and sends again never gets the second
   reply: every trial, deterministically.
2. A client that sends two parts with a gap of a millisecond or so, then half-closes, gets
   its whole reply in some trials and not in others: the outcome depends on whether the
   second part arrived before the handler's next recv(): the target's own non-determinism,
   which is why the contracts' examples make the handler wait (as in 1), so that their
   verdict is a failure every run.
3. serve_forever() run as a green thread of the caller's own hub (instead of in an OS thread
   of its own) starves that hub entirely: no other green thread runs again, so a harness
   driving the server from the same hub would stop answering. That is why the kit runs it
   in an OS thread of its own, as ``threading.Thread(target=server.serve_forever)`` does.

Run: ``python eventlet_green_starvation.py`` (needs eventlet). Exit status 0 when all three
were seen.
"""

import contextlib
import socket
import subprocess
import sys
import threading
import time
import warnings

TRIALS = 10
GAPS = (0.00025, 0.0005, 0.001, 0.002)
REPLY_WAIT = 0.5
HUB_CHECK = """
import socket, time, warnings
warnings.simplefilter("ignore")
import eventlet
from eventlet.green import SocketServer as socketserver
server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
eventlet.spawn(server.serve_forever, 0.5)
eventlet.sleep(1.0)
print("the hub ran again")
"""


def _echo_server():
    warnings.simplefilter("ignore")
    from eventlet.green import SocketServer as socketserver

    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                data = self.request.recv(1024)
                if not data:
                    return
                self.request.sendall(data.upper())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, args=(0.5,), daemon=True).start()
    return server


def _read_all(client):
    received = b""
    try:
        while True:
            data = client.recv(100)
            if not data:
                return received
            received += data
    except socket.timeout:
        return received


def second_reply_starves(address):
    """Observation 1: True when no trial got the reply to its second send."""
    answered = 0
    for _ in range(TRIALS):
        with socket.create_connection(address, timeout=REPLY_WAIT) as client:
            client.sendall(b"ab")
            client.recv(100)
            time.sleep(0.1)
            client.sendall(b"cd")
            with contextlib.suppress(socket.timeout):
                answered += bool(client.recv(100))
    print(f"1. send, read the reply, pause, send again: {answered} of {TRIALS} trials "
          "got the second reply")
    return answered == 0


def split_send_varies(address):
    """Observation 2: True when some trials got the whole reply and some did not."""
    outcomes = []
    for gap in GAPS:
        whole = 0
        for _ in range(TRIALS):
            with socket.create_connection(address, timeout=REPLY_WAIT) as client:
                client.sendall(b"ab")
                time.sleep(gap)
                client.sendall(b"cd")
                client.shutdown(socket.SHUT_WR)
                whole += _read_all(client) == b"ABCD"
        outcomes.append(whole)
        print(f"2. two parts {gap * 1000:g} ms apart, then EOF: {whole} of {TRIALS} trials "
              "got the whole reply")
    total = sum(outcomes)
    return 0 < total < TRIALS * len(GAPS)


def same_hub_starves():
    """Observation 3: True when a green serve_forever() kept its hub from running again."""
    try:
        completed = subprocess.run([sys.executable, "-c", HUB_CHECK], capture_output=True,
                                   text=True, timeout=5)
        ran = "the hub ran again" in completed.stdout
    except subprocess.TimeoutExpired:
        ran = False
    print("3. serve_forever() as a green thread of the caller's hub: the hub "
          + ("ran again" if ran else "never ran again (stopped after 5 s)"))
    return not ran


def main():
    server = _echo_server()
    seen = [second_reply_starves(server.server_address),
            split_send_varies(server.server_address), same_hub_starves()]
    return 0 if all(seen) else 1


if __name__ == "__main__":
    sys.exit(main())
