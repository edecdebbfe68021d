"""Calls into the implementation that the agent bounds: each runs in a daemon thread of its
own, so that a call that never returns costs a thread, never the agent's answer."""

import threading
import time

from .protocol import jsonable


class Task(object):
    """A call running in its own thread; ``name`` says what it calls, for reports."""

    def __init__(self, call, name="call"):
        self.outcome = {}
        self.started = time.time()
        self.name = name
        self.thread = threading.Thread(target=self._run, args=(call,),
                                       name="conformance-call " + name)
        self.thread.daemon = True
        self.thread.start()

    def _run(self, call):
        try:
            self.outcome["value"] = jsonable(call())
            self.outcome["result"] = "ok"
        except BaseException as exc:
            self.outcome["result"] = "raised"
            self.outcome["exception"] = type(exc).__name__
            self.outcome["error"] = repr(exc)
        self.outcome["elapsed"] = time.time() - self.started

    def running(self):
        return self.thread.is_alive()

    def wait(self, timeout):
        self.thread.join(timeout)
        if self.thread.is_alive():
            return {"result": "hung", "elapsed": time.time() - self.started}
        return dict(self.outcome)
