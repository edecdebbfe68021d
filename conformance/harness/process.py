"""The kit's side of the harness: starts the agent in the target interpreter and talks to it.

What crosses to the agent is built here, and what comes back is read here (and in the
observations and replies modules): the rest of the kit sees frozen classes with named
fields, never the agent's messages.

Every call is bounded. An agent that does not answer in time, or dies, raises HarnessError
with the cause and the tail of the agent's stderr; the harness is then discarded and a fresh
one is started for the next test.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from conformance import bounds
from conformance.coverage.measurement import Measurement
from conformance.harness.handlers import (
    MARK_ATTRIBUTE,
    DatagramEcho,
    DatagramFile,
    Defaults,
    Echo,
    HandlerSpec,
    Idle,
    Lines,
    UserClass,
    is_datagram_class,
)
from conformance.harness.observations import (
    ENDED,
    METHOD_RETURNED,
    Handler,
    Observation,
    Reports,
    ServerCall,
)
from conformance.harness.replies import (
    CallOutcome,
    ClassInspection,
    Construction,
    HeldSockets,
    Hello,
    Processes,
    ServerState,
    StopReport,
)
from conformance.targets import Target, TargetError, absolute_spec

AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent")
STDERR_TAIL = 2000
# Past this size the agent's stderr file is emptied as the next test begins.
STDERR_KEEP = 1 << 20
# The agent's name for each kind of handler.
_HANDLER_KINDS = {Echo: "echo", DatagramEcho: "udp-echo", Lines: "lines",
                  DatagramFile: "datagram-file", Idle: "idle", Defaults: "default",
                  UserClass: "user"}
# A handler spec's option -> the agent's name for it and, where it differs, the agent's
# form of its value.
_HANDLER_OPTIONS: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "raises_in": ("raise_in", None),
    "raises": ("raise", None),
    "sleep_prefix": ("sleep_prefix", lambda prefix: prefix.decode("ascii")),
    # Shut down the server the kit started, whatever self.server is.
    "shuts_down_server": ("shutdown_server", lambda _: "started"),
    "marks_server": ("mark_server", None),
    "send_buffer": ("sndbuf", None),
    "spec": ("class", None),
}


def _handler_message(spec: HandlerSpec) -> dict[str, Any]:
    """A handler spec as the agent reads it: its kind, and the options that are set."""
    message: dict[str, Any] = {"kind": _HANDLER_KINDS[type(spec)]}
    for option in fields(spec):
        given = getattr(spec, option.name)
        if given is None or given is False or given == {}:
            continue
        name, convert = _HANDLER_OPTIONS.get(option.name, (option.name, None))
        message[name] = given if convert is None else convert(given)
    if spec.raises_in is None:
        # What to raise means nothing without where.
        message.pop("raise")
    return message


class HarnessError(Exception):
    """The harness failed to answer: the target hung, crashed or misbehaved."""


class Harness:
    """One agent process running the target's interpreter, with the implementation loaded;
    with a ``measurement`` (--coverage), measuring what the implementation executes."""

    def __init__(self, target: Target, measurement: Measurement | None = None) -> None:
        self.target = target
        self.measurement = measurement
        # Lives as long as the agent; close() closes it. Appended to, so that the agent's
        # writes land at its end wherever the kit reads, and after stderr_mark() empties it.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        flags = fcntl.fcntl(self._stderr.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(self._stderr.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
        self._stderr_start = 0
        self._buffer = b""
        self._seq = 0
        self.broken = False
        command = [target.interpreter(), "-u", AGENT_PATH, *target.harness_args(),
                   *(measurement.harness_args() if measurement else ())]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
        )
        try:
            self.hello = self._read(bounds.HARNESS_START, "hello")
        except HarnessError:
            self.close()
            raise
        if not self.hello.get("ok"):
            self.close()
            stage = {"prelude": f"--prelude {target.prelude}", "coverage": "--coverage",
                     "handler": f"--handler {target.handler}",
                     "server-class": f"--server-class {self._given_spec()}"}.get(
                         self.hello.get("stage", ""), f"--impl {target.impl}")
            raise TargetError(f"{stage}: {self.hello.get('error')}")
        # ``hello`` stays the message as sent, which the target's description records.
        self.facts = Hello.from_reply(self.hello)

    def _given_spec(self) -> str:
        """The --server-class the failed hello names, as the user wrote it."""
        sent = self.hello.get("spec", "")
        return next((spec for spec in self.target.server_classes
                     if absolute_spec(spec) == sent), sent)

    @property
    def target_name(self) -> str:
        """The target's name, as its reports are named."""
        return self.target.name(self.hello)

    @property
    def usable(self) -> bool:
        """False once the agent died or missed an answer: its replies can't be trusted."""
        return not self.broken and self._process.poll() is None

    @property
    def classes(self) -> list[str]:
        """The server classes the implementation has."""
        return list(self.facts.classes)

    def stderr_mark(self) -> None:
        """Quote in failures only what the agent writes to stderr from now on: the harness
        is shared by the tests of a process, and each failure shows its own test's. A
        target that floods its output costs the disk what one test writes, not the run."""
        self._stderr.seek(0, os.SEEK_END)
        if self._stderr.tell() > STDERR_KEEP:
            self._stderr.seek(0)
            self._stderr.truncate()
        self._stderr_start = self._stderr.tell()

    def stderr_tail(self) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(self._stderr_start, size - STDERR_TAIL))
        return self._stderr.read().decode("utf-8", "replace")

    def call(self, op: str, timeout: float | None = None,
             **request: Any) -> dict[str, Any]:
        """Send one request and wait, at most ``timeout`` seconds (default:
        ``bounds.HARNESS_ANSWER``), for its reply."""
        timeout = bounds.HARNESS_ANSWER if timeout is None else timeout
        self._seq += 1
        message = json.dumps({"op": op, "seq": self._seq, **request}) + "\n"
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(message.encode("utf-8"))
            self._process.stdin.flush()
        except OSError as exc:
            raise self._failure(
                f"the harness exited before it could be sent {op!r} ({exc})") from None
        deadline = time.monotonic() + timeout
        reply = self._read(timeout, op)
        # A request whose wait was interrupted (Ctrl-C, SIGTERM during a test) is answered
        # later: its reply comes before this one's and says nothing about it.
        while isinstance(reply.get("seq"), int) and reply["seq"] < self._seq:
            reply = self._read(max(0.0, deadline - time.monotonic()), op)
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
                        self._process.wait(bounds.HARNESS_EXIT)
                    raise self._failure(f"the harness exited while answering {op!r}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            # The target found the agent's channel and wrote into it.
            raise self._failure(f"the harness answered {op!r} with something that is not a "
                                f"reply: {line[:200]!r}")
        return reply

    def _failure(self, message: str) -> HarnessError:
        self.broken = True
        code = self._process.poll()
        if code is not None:
            message += f" (exit status {code})"
        tail = self.stderr_tail().strip()
        if tail:
            message += "\nharness stderr (tail):\n" + tail
        return HarnessError(message)

    def start(self, server_class: str, handler: HandlerSpec, *, family: str | None = None,
              attrs: dict[str, Any] | None = None, serve: bool = True,
              bind_and_activate: bool | None = True, verify: bool = True,
              poll_interval: float | None = None, port: int | None = None,
              ignore_sigchld: bool = False, user_class: str | None = None,
              bare_base: bool = False, context: str | None = None) -> ServedServer:
        """Run ``server_class`` on a loopback address with ``handler``, which reports what
        it observes.

        ``family``: inet (the default), inet6 or unix; ``attrs``: attributes of the server
        class; ``serve``: False leaves serve_forever() to the kit; ``bind_and_activate``:
        the constructor's argument (None: not given, the class's default); ``verify``: False
        makes verify_request() refuse every request; ``poll_interval``: that of the
        harness's serve_forever(); ``port`` (inet, inet6): the port to bind instead of a
        free one; ``ignore_sigchld``: SIGCHLD is SIG_IGN in the harness while the server
        runs, so that the kernel reaps its children; ``user_class``: the spec of a user's
        own server class (one of ``facts.server_classes``) to run instead, ``server_class``
        being its kind; ``bare_base``: run instead a direct subclass of the implementation's
        BaseServer that supplies only a TCP socket listening on a free loopback port (its
        fileno() and get_request()) and inherits every other method, ``server_class`` being
        the stream class the kit treats it as; ``context``: the coverage context of what the
        harness runs from now on (the contract and server class; used only while measuring)."""
        options: dict[str, Any] = {"serve": serve}
        if bind_and_activate is not None:
            options["bind_and_activate"] = bind_and_activate
        if family is not None:
            options["family"] = family
        if attrs:
            options["attrs"] = attrs
        if not verify:
            options["verify"] = False
        if poll_interval is not None:
            options["poll_interval"] = poll_interval
        if port is not None:
            options["port"] = port
        if ignore_sigchld:
            options["sigchld"] = "ignore"
        if bare_base:
            options["bare_base"] = True
        if context is not None and self.measurement is not None:
            options["context"] = context
        reply = self.call("start", server=user_class or server_class,
                          handler=_handler_message(handler),
                          **options)
        address = reply["address"]
        return ServedServer(self, reply["id"],
                            tuple(address) if isinstance(address, list) else address,
                            server_class, started_as=user_class or server_class,
                            bare_base=bare_base)

    def inspect(self, class_name: str, *, attrs: tuple[str, ...] = (),
                subclass_of: tuple[str, ...] = ()) -> ClassInspection:
        """A class of the implementation: whether it exists, its MRO (class names), the
        class defining each of ``attrs``, and whether it subclasses each of ``subclass_of``."""
        reply = self.call("inspect", **{"class": class_name, "attrs": list(attrs),
                                        "subclass_of": list(subclass_of)})
        return ClassInspection.from_reply(class_name, reply)

    def close(self) -> None:
        """Stop the agent and everything it started; never waits more than a few seconds."""
        if self._process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self._process.stdin is not None
                self._process.stdin.write(b'{"op": "quit"}\n')
                self._process.stdin.flush()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(bounds.HARNESS_QUIT)
        # The agent leads its own process group: this reaches forked handlers too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(bounds.HARNESS_KILLED)
        for stream in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._stderr.close()


class ServedServer:
    """A server running in the harness, and what its handlers have reported so far."""

    def __init__(self, harness: Harness, server_id: int, address: tuple[Any, ...],
                 server_class: str, *, started_as: str | None = None,
                 bare_base: bool = False) -> None:
        self.harness = harness
        self.id = server_id
        self.address = address
        self.server_class = server_class
        # The class the harness started: server_class, or a user's own class by its spec.
        self._started_as = started_as or server_class
        # A direct subclass of the implementation's BaseServer (Harness.start's bare_base).
        self.bare_base = bare_base
        self._taken = 0
        self._reports = Reports()
        self.stop_report: StopReport | None = None

    @property
    def is_datagram(self) -> bool:
        return is_datagram_class(self.server_class)

    def poll(self, timeout: float = 0.0, *, wake: tuple[str, ...] = ()) -> None:
        """Fetch new reports, waiting up to ``timeout`` for the first one (with ``wake``, for
        one of those kinds: a handler's step such as "finish", or "call:METHOD")."""
        reply = self.harness.call("events", timeout=timeout + bounds.HARNESS_ANSWER,
                                  id=self.id, since=self._reports.count, timeout_s=timeout,
                                  wake=list(wake))
        self._reports.add(reply["events"])

    def handlers(self) -> list[Handler]:
        """Every handler instance seen so far, in the order their setup() ran."""
        return self._reports.handlers()

    def take_handlers(self, count: int, *, until: str, timeout: float) -> list[Handler]:
        """The next ``count`` handler instances not taken yet, once each reported step
        ``until`` ("setup", "handle" or "finish": that method began) or ended without it
        (its setup() raised).

        Returns fewer, or unfinished, handlers if the timeout passes first; the caller's
        assertion then says what was missing."""
        def reported() -> bool:
            fresh = self._reports.handlers(self._taken)[:count]
            return sum(1 for h in fresh if h.has(until) or h.ended) >= count

        self._poll_until(reported, timeout=timeout, wake=(until, *ENDED))
        fresh = self._reports.handlers(self._taken)[:count]
        self._taken += len(fresh)
        return fresh

    def handlers_finished(self, *, since: int, timeout: float, every: bool = False) -> bool:
        """Whether one of the handlers from the ``since``-th on (in setup() order),
        whichever it is, has reached finish() within ``timeout``; with ``every``, whether
        all of them have."""
        reached = all if every else any
        self.poll()
        return self._poll_until(
            lambda: reached(handler.finished for handler in self._reports.handlers(since)),
            timeout=timeout, wake=("finish",))

    def _poll_until(self, condition: Callable[[], bool], *, timeout: float,
                    wake: tuple[str, ...], step: float = 1.0) -> bool:
        """Fetch reports, each fetch waiting at most ``step`` seconds for one of a ``wake``
        kind, until ``condition()`` holds or ``timeout`` seconds have passed; whether it
        holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.poll(min(remaining, step), wake=wake)
        return True

    def observed(self, since: float) -> list[Observation]:
        """What the server and its handlers reported from ``since`` (seconds since the
        epoch) on, in order, for a failure's transcript; what came before the harness
        stopped answering, if it did."""
        if self.harness.usable:
            with contextlib.suppress(HarnessError):
                self.poll()
        seen = [Observation(call.time, "server", f"{call.method}()")
                for call in self._reports.calls()]
        # Handlers are numbered as they started within the span.
        recent = [handler for handler in self._reports.handlers()
                  if any(event.get("time", 0.0) >= since for event in handler.events)]
        for number, handler in enumerate(recent, 1):
            seen += [Observation(event.get("time", 0.0), f"handler {number}",
                                 event["kind"] + (f": {event['error']}" if "error" in event
                                                  else ""))
                     for event in handler.events]
        return sorted((o for o in seen if o.t >= since), key=lambda o: o.t)

    def calls(self) -> list[ServerCall]:
        """The server methods called so far (get_request, verify_request, ...), in order."""
        self.poll()
        return self._reports.calls()

    def calls_within(self, call: ServerCall, *, timeout: float) -> list[ServerCall] | None:
        """The server methods that ``call`` made itself (those called in its own process and
        thread after it began and before it returned), once its return is reported; None
        if it is not within ``timeout`` seconds, as for every method but
        shutdown_request(), whose return alone is reported."""
        self.poll()
        self._poll_until(lambda: self._reports.within(call) is not None, timeout=timeout,
                         wake=(METHOD_RETURNED,), step=0.5)
        return self._reports.within(call)

    def wait_for_calls(self, method: str, count: int, *, since: int,
                       timeout: float) -> list[ServerCall]:
        """The server's calls from index ``since`` on, once ``method`` is among them
        ``count`` times or ``timeout`` seconds have passed."""
        self.poll()
        self._poll_until(
            lambda: sum(1 for c in self._reports.calls()[since:] if c.method == method) >= count,
            timeout=timeout, wake=(f"call:{method}",), step=0.5)
        return self._reports.calls()[since:]

    def watch(self, requests: int = 1, *, closed: bool = False) -> RequestWatch:
        """What tells a client, while it waits, that the server is done with the
        ``requests`` requests it is about to make: create it before the client sends (its
        handlers are those set up from then on). ``closed``: done means the connection is
        closed too (shutdown_request() returned), for a client that waits for EOF."""
        return RequestWatch(self, requests, closed=closed)

    def call(self, method: str, *args: Any, timeout: float | None = None,
             ) -> CallOutcome:
        """Call ``method`` on the server in the harness, waiting at most ``timeout``
        (default: ``bounds.SERVER_CALL``)."""
        timeout = bounds.SERVER_CALL if timeout is None else timeout
        return CallOutcome.from_reply(self.harness.call(
            "call", timeout=timeout + bounds.HARNESS_ANSWER, id=self.id, method=method,
            args=list(args), timeout_s=timeout))

    def call_in_background(self, method: str, *args: Any) -> int:
        """Start ``method`` on the server in its own thread; join() it later."""
        return int(self.harness.call("call", id=self.id, method=method, args=list(args),
                                     background=True)["task"])

    def join(self, task: int, *, timeout: float | None = None) -> CallOutcome:
        """Wait at most ``timeout`` (default: ``bounds.SERVER_CALL``) for a background
        call; hung if it has not returned."""
        timeout = bounds.SERVER_CALL if timeout is None else timeout
        return CallOutcome.from_reply(self.harness.call(
            "join", timeout=timeout + bounds.HARNESS_ANSWER, task=task, timeout_s=timeout))

    def set_attributes(self, **attrs: Any) -> None:
        """Set these attributes on the server instance in the harness (``timeout``, ...)."""
        self.harness.call("set", id=self.id, attrs=attrs)

    def set_socket_timeout(self, seconds: float | None) -> None:
        """Call settimeout(``seconds``) on the server's socket in the harness (None: make
        it blocking again)."""
        self.harness.call("settimeout", id=self.id, seconds=seconds)

    def construct_at_address(self) -> Construction:
        """Construct another server of the same class at this server's address, which this
        one holds, so that binding fails; say what the constructor did (see Construction).
        Its socket is closed whatever the constructor did."""
        return Construction.from_reply(self.harness.call(
            "construct", server=self._started_as,
            address=list(self.address) if isinstance(self.address, tuple) else self.address))

    def run_with_statement(self, *, timeout: float | None = None) -> CallOutcome:
        """Run ``with server as entered: pass`` in the harness, waiting at most ``timeout``
        (default: ``bounds.SERVER_CALL``); as call(), with the value True when ``entered``
        is the server itself."""
        timeout = bounds.SERVER_CALL if timeout is None else timeout
        return CallOutcome.from_reply(self.harness.call(
            "with", timeout=timeout + bounds.HARNESS_ANSWER, id=self.id, timeout_s=timeout))

    def state(self, *attrs: str) -> ServerState:
        """The server's socket, the values of ``attrs``, and the harness's threads (see
        ServerState)."""
        return ServerState.from_reply(self.harness.call("state", id=self.id,
                                                        attrs=list(attrs)))

    def processes(self, *pids: int) -> Processes:
        """The harness's child processes, running and zombie, as /proc lists them; each of
        ``pids`` is checked by name too (a listing may miss a child while others come and
        go)."""
        return Processes.from_reply(self.harness.call("state", id=self.id, processes=True,
                                                      pids=list(pids)))

    def held_sockets(self) -> HeldSockets:
        """The sockets the harness's process holds (one walk over its descriptors)."""
        return HeldSockets.from_reply(self.harness.call("state", id=self.id, sockets=True))

    def attribute(self, name: str) -> Any:
        """The value of the server instance's attribute ``name`` (None if it has none)."""
        return self.state(name).attrs.get(name)

    def marked_by(self) -> int | None:
        """The pid of a handler that set its mark on this server instance (a spec with
        marks_server), as this process sees the instance; None if none did."""
        mark = self.attribute(MARK_ATTRIBUTE)
        return None if mark is None else int(mark)

    def serve_forever_running(self) -> bool:
        """Whether the harness's serve_forever() for this server is still running: False
        once it has returned or raised (nothing but stop() should end it)."""
        return self.state().serve_forever_running

    def untaken(self) -> list[Handler]:
        """Handler instances that reported since the last take_handlers() and were not taken."""
        self.poll()
        return self.handlers()[self._taken:]

    def running(self, handlers: list[Handler]) -> list[str]:
        """The uids of those handlers whose own thread or process is still running."""
        reply = self.harness.call("running", id=self.id, handlers=[h.uid for h in handlers])
        return list(reply["running"])

    def stop(self, timeout: float | None = None) -> StopReport:
        """shutdown() then server_close(), each bounded by ``timeout`` (default:
        ``bounds.STOP``); where they fail, the harness ends serve_forever() and closes the
        socket by other means. Says what happened (see StopReport).

        The harness waits for shutdown() only as long as the contract lifecycle.shutdown_bound
        allows, the loops' poll_interval plus ``bounds.LOOP_SLACK``: one that takes longer
        is that contract's failure, and every other test's server is stopped by other means
        without waiting out the whole bound."""
        timeout = bounds.STOP if timeout is None else timeout
        if self.stop_report is None:
            # shutdown(), the loops' end, two means of ending them, server_close(): at most
            # ``timeout`` each.
            self.stop_report = StopReport.from_reply(self.harness.call(
                "stop", timeout=5 * timeout + bounds.HARNESS_ANSWER, id=self.id,
                timeout_s=timeout, shutdown_s=bounds.LOOP_SLACK))
        return self.stop_report


class RequestWatch:
    """Whether a server is done with the requests a client made: its handler instances, set
    up since the watch was created, have all ended (and with ``closed``, the server has shut
    each request down), so nothing more will come to the client. A client's wait asks
    ``served()`` now and then (each time one round trip to the harness) and, once it says
    so, ends after a grace period for what is still in flight (see clients.ending)."""

    def __init__(self, server: ServedServer, requests: int, *, closed: bool) -> None:
        self._server = server
        self._requests = requests
        self._closed = closed
        # The agent stamps its reports with time.time() of the same machine: a handler set
        # up at or after this is one of the client's.
        self._since = time.time()

    def served(self) -> bool:
        self._server.poll()
        return self._server._reports.served(self._since, self._requests,
                                            closed=self._closed)
