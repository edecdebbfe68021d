"""How a run ends before its natural end, and still leaves a report that says so.

Three things bound a run from outside the contracts themselves:

- ``--max-time SECONDS``: from that point on no contract test starts; the ones running
  finish (every wait in them is bounded), the reports list what did not run, and the run
  exits 1, since not every contract was shown to hold.
- An outside stop (a CI job's timeout sending SIGTERM, Ctrl-C): pytest ends the session
  as interrupted, and the reports written so far stay valid (they are rewritten as
  contracts finish, see conformance.reporting.collector).
- Hypothesis' shrink phase: a target that fails every example the same way (nothing comes
  back at all) would have Hypothesis shrink through many bound-long examples. Each test
  gets ``bounds.SHRINK_BUDGET`` seconds of shrinking; a failure whose shrinking was cut
  short says so in its message.
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

import pytest

from conformance import bounds

# The skip reason of a contract test that did not start because --max-time had passed.
NOT_RUN = "not run: the run's --max-time had passed"
# What Hypothesis reports when its shrink phase ran out of time.
_SHRINK_STOPPED = "stopped because it is making very slow progress"
_WORKER_KEY = "conformance_deadline"


def limit_shrinking() -> None:
    """Give every test's shrink phase ``bounds.SHRINK_BUDGET`` seconds.

    Hypothesis has no public setting for it: its engine reads this module constant (five
    minutes by default) each time a shrink phase starts."""
    from hypothesis.internal.conjecture import engine

    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        engine.MAX_SHRINKING_SECONDS = bounds.SHRINK_BUDGET


def shrink_note() -> str:
    """What a failure's message ends with when its shrinking was cut short."""
    return (f"(shrinking stopped after the kit's {bounds.SHRINK_BUDGET:g}s shrink budget: "
            "the example shown may not be the smallest)")


def shrinking_stopped(report: pytest.TestReport) -> bool:
    """Whether Hypothesis said, in this test's output, that it stopped shrinking early."""
    return any(_SHRINK_STOPPED in content for _, content in report.sections)


class RunClock:
    """A pytest plugin object in every process of a run: no test starts after the deadline.

    The controller sets the deadline (wall-clock, so that xdist workers share it) and hands
    it to each worker; ``stopped`` says whether a test was held back."""

    def __init__(self, config: pytest.Config, max_time: float | None) -> None:
        worker_input = getattr(config, "workerinput", None)
        if worker_input is not None:
            self.deadline: float | None = worker_input.get(_WORKER_KEY)
        else:
            self.deadline = None if max_time is None else time.time() + max_time
            _stop_cleanly_on_sigterm()
        self.stopped = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_WORKER_KEY] = self.deadline

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.deadline is not None and time.time() >= self.deadline:
            self.stopped = True
            pytest.skip(NOT_RUN)


def _stop_cleanly_on_sigterm() -> None:
    """SIGTERM (how CI systems and ``timeout`` stop a job) ends the run as Ctrl-C does:
    pytest finishes the session, so the reports say the run was interrupted."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # ValueError: not the main thread (pytest run inside another program); leave it alone.
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, interrupt)
