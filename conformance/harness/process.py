"""The kit's side of the harness: starts the agent in the target interpreter and talks to it.

Every call is bounded. An agent that does not answer in time, or dies, raises HarnessError
with the cause and the tail of the agent's stderr; the harness is then discarded and a fresh
one is started for the next test.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from typing import Any

from conformance.harness.observations import Handler, collect_handlers, server_calls
from conformance.targets import Target, TargetError

AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent")
HELLO_TIMEOUT = 60.0
CALL_TIMEOUT = 10.0
STDERR_TAIL = 2000


def is_datagram_class(server_class: str) -> bool:
    """True for the UDP and Unix datagram server classes, by the stdlib's naming."""
    return "UDP" in server_class or "Datagram" in server_class


class HarnessError(Exception):
    """The harness failed to answer: the target hung, crashed or misbehaved."""


class Harness:
    """One agent process running the target's interpreter, with the implementation loaded."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # Lives as long as the agent; close() closes it.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        self._buffer = b""
        self._seq = 0
        self.broken = False
        command = [target.interpreter(), "-u", AGENT_PATH, *target.harness_args()]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        try:
            self.hello = self._read(HELLO_TIMEOUT, "hello")
        except HarnessError:
            self.close()
            raise
        if not self.hello.get("ok"):
            self.close()
            stage = {"prelude": f"--prelude {target.prelude}",
                     "handler": f"--handler {target.handler}"}.get(
                         self.hello.get("stage", ""), f"--impl {target.impl}")
            raise TargetError(f"{stage}: {self.hello.get('error')}")

    @property
    def usable(self) -> bool:
        """False once the agent died or missed an answer: its replies can't be trusted."""
        return not self.broken and self._process.poll() is None

    @property
    def classes(self) -> list[str]:
        return list(self.hello["classes"])

    def stderr_tail(self) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - STDERR_TAIL))
        return self._stderr.read().decode("utf-8", "replace")

    def call(self, op: str, timeout: float = CALL_TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Send one request and wait, at most ``timeout`` seconds, for its reply."""
        self._seq += 1
        message = json.dumps({"op": op, "seq": self._seq, **fields}) + "\n"
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(message.encode("utf-8"))
            self._process.stdin.flush()
        except OSError as exc:
            raise self._failure(
                f"the harness exited before it could be sent {op!r} ({exc})") from None
        reply = self._read(timeout, op)
        if reply.get("seq") != self._seq:
            raise self._failure(f"the harness answered {op!r} with a reply to another request "
                                f"(seq {reply.get('seq')}, not {self._seq})")
        if not reply.get("ok"):
            raise HarnessError(f"the harness could not {op}: {reply.get('error')}\n"
                               f"{reply.get('traceback', '')}")
        return reply

    def _read(self, timeout: float, op: str) -> dict[str, Any]:
        assert self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._failure(f"the harness did not answer {op!r} within {timeout:g}s")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    # Its output closed: give the exit status a moment to be collectable.
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._process.wait(2)
                    raise self._failure(f"the harness exited while answering {op!r}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _failure(self, message: str) -> HarnessError:
        self.broken = True
        code = self._process.poll()
        if code is not None:
            message += f" (exit status {code})"
        tail = self.stderr_tail().strip()
        if tail:
            message += "\nharness stderr (tail):\n" + tail
        return HarnessError(message)

    def start(self, server_class: str, handler: str | dict[str, Any] = "echo",
              **options: Any) -> ServedServer:
        """Run ``server_class`` on a loopback address with a reporting handler.

        ``handler`` is a kind, or a dict with ``kind`` and options (see the agent):
        ``echo`` (recv(1024) and sendall(data.upper()) until EOF), ``udp-echo`` (reply with
        the datagram upper-cased), ``lines`` (a StreamRequestHandler echoing lines),
        ``datagram-file`` (a DatagramRequestHandler echoing through rfile and wfile),
        ``idle``. ``options``: ``family`` (inet, inet6, unix), ``attrs`` (server class
        attributes), ``serve`` (False: no serve_forever), ``bind_and_activate``,
        ``verify`` (False: verify_request refuses), ``poll_interval``, ``port`` (inet and
        inet6: the port to bind instead of a free one), ``sigchld`` ("ignore": SIGCHLD is
        SIG_IGN in the harness while the server runs)."""
        reply = self.call("start", server=server_class, handler=handler, **options)
        address = reply["address"]
        return ServedServer(self, reply["id"],
                            tuple(address) if isinstance(address, list) else address,
                            server_class)

    def inspect(self, class_name: str, *, attrs: tuple[str, ...] = (),
                subclass_of: tuple[str, ...] = ()) -> dict[str, Any]:
        """A class of the implementation: whether it exists, its MRO (class names), the
        class defining each of ``attrs``, and whether it subclasses each of ``subclass_of``."""
        return self.call("inspect", **{"class": class_name, "attrs": list(attrs),
                                       "subclass_of": list(subclass_of)})

    def close(self) -> None:
        """Stop the agent and everything it started; never waits more than a few seconds."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self._process.stdin is not None
                self._process.stdin.write(b'{"op": "quit"}\n')
                self._process.stdin.flush()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(3)
        # The agent leads its own process group: this reaches forked handlers too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(5)
        for stream in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._stderr.close()


class ServedServer:
    """A server running in the harness, and what its handlers have reported so far."""

    def __init__(self, harness: Harness, server_id: int, address: tuple[Any, ...],
                 server_class: str) -> None:
        self.harness = harness
        self.id = server_id
        self.address = address
        self.server_class = server_class
        self._taken = 0
        self.events: list[dict[str, Any]] = []
        self.stop_report: dict[str, Any] | None = None

    @property
    def is_datagram(self) -> bool:
        return is_datagram_class(self.server_class)

    def poll(self, timeout: float = 0.0) -> list[dict[str, Any]]:
        """Fetch new events, waiting up to ``timeout`` for the first one."""
        reply = self.harness.call("events", timeout=timeout + CALL_TIMEOUT, id=self.id,
                                  since=len(self.events), timeout_s=timeout)
        new = reply["events"]
        self.events.extend(new)
        return new

    def handlers(self) -> list[Handler]:
        """Every handler instance seen so far, in the order their setup() ran."""
        return collect_handlers(self.events)

    def take_handlers(self, count: int, *, until: str, timeout: float) -> list[Handler]:
        """The next ``count`` handler instances not taken yet, once each reported ``until``.

        Returns fewer, or unfinished, handlers if the timeout passes first; the caller's
        assertion then says what was missing."""
        deadline = time.monotonic() + timeout
        while True:
            fresh = self.handlers()[self._taken:]
            if sum(1 for h in fresh[:count] if h.has(until)) >= count:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.poll(min(remaining, 1.0))
        self._taken += min(count, len(fresh))
        return fresh[:count]

    def calls(self) -> list[dict[str, Any]]:
        """The server methods called so far (get_request, verify_request, ...), in order,
        as {"method", "pid", "thread", "client_address", "error_type", ...} events."""
        self.poll()
        return server_calls(self.events)

    def wait_for_calls(self, method: str, count: int, *, since: int,
                       timeout: float) -> list[dict[str, Any]]:
        """The server's calls from index ``since`` on, once ``method`` is among them
        ``count`` times or ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls()[since:]
            remaining = deadline - time.monotonic()
            if sum(1 for c in calls if c["method"] == method) >= count or remaining <= 0:
                return calls
            self.poll(min(remaining, 0.5))

    def call(self, method: str, *args: Any, timeout: float = 5.0) -> dict[str, Any]:
        """Call ``method`` on the server in the harness, waiting at most ``timeout``.

        Returns {"result": "ok"|"raised"|"hung", "value", "exception", "elapsed"}."""
        return self.harness.call("call", timeout=timeout + CALL_TIMEOUT, id=self.id,
                                 method=method, args=list(args), timeout_s=timeout)

    def call_in_background(self, method: str, *args: Any) -> int:
        """Start ``method`` on the server in its own thread; join() it later."""
        return int(self.harness.call("call", id=self.id, method=method, args=list(args),
                                     background=True)["task"])

    def join(self, task: int, *, timeout: float = 5.0) -> dict[str, Any]:
        """Wait at most ``timeout`` for a background call; "hung" if it has not returned."""
        return self.harness.call("join", timeout=timeout + CALL_TIMEOUT, task=task,
                                 timeout_s=timeout)

    def set_attributes(self, **attrs: Any) -> None:
        """Set these attributes on the server instance in the harness (``timeout``, ...)."""
        self.harness.call("set", id=self.id, attrs=attrs)

    def run_with_statement(self, *, timeout: float = 5.0) -> dict[str, Any]:
        """Run ``with server as entered: pass`` in the harness, waiting at most ``timeout``;
        as call(), with the value True when ``entered`` is the server itself."""
        return self.harness.call("with", timeout=timeout + CALL_TIMEOUT, id=self.id,
                                 timeout_s=timeout)

    def state(self, *attrs: str) -> dict[str, Any]:
        """The server's socket (fileno, sockname, listening), the values of ``attrs``, the
        agent's threads and children, and the peers of every socket the agent holds;
        ``zombies``: its children that exited unreaped; ``stream_connections``: the local
        address of every non-listening stream socket it holds."""
        return self.harness.call("state", id=self.id, attrs=list(attrs))

    def serve_forever_running(self) -> bool:
        """Whether the harness's serve_forever() for this server is still running: False
        once it has returned or raised (nothing but stop() should end it)."""
        return bool(self.state()["serve_forever_running"])

    def untaken(self) -> list[Handler]:
        """Handler instances that reported since the last take_handlers() and were not taken."""
        self.poll()
        return self.handlers()[self._taken:]

    def running(self, handlers: list[Handler]) -> list[str]:
        """The uids of those handlers whose own thread or process is still running."""
        reply = self.harness.call("running", id=self.id, handlers=[h.uid for h in handlers])
        return list(reply["running"])

    def stop(self, timeout: float = 5.0) -> dict[str, Any]:
        """shutdown() then server_close(), each bounded; says which of them hung."""
        if self.stop_report is None:
            self.stop_report = self.harness.call("stop", timeout=3 * timeout + CALL_TIMEOUT,
                                                 id=self.id, timeout_s=timeout)
        return self.stop_report
