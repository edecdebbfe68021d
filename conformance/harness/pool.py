"""The harness of one pytest process: started on first use, replaced when it breaks."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.coverage.measurement import Measurement
from conformance.harness.process import Harness
from conformance.targets import Target, TargetError


class HarnessPool:
    """Holds this process's harness for the target.

    A preset that cannot run here (``unavailable``, or a package its harness fails to
    import, explained with ``install_hint``) skips every contract with the reason. With a
    ``measurement`` (--coverage, set before the first harness starts), every harness
    measures what the implementation executes."""

    def __init__(self, target: Target, *, unavailable: str | None = None,
                 install_hint: str | None = None) -> None:
        self.target = target
        self.unavailable = unavailable
        self._install_hint = install_hint
        self._harness: Harness | None = None
        self.measurement: Measurement | None = None

    def get(self) -> Harness:
        """The running harness; restarts a broken one, skips an unavailable target."""
        if self.unavailable:
            pytest.skip(self.unavailable)
        if self._harness is not None and not self._harness.usable:
            self.discard()
        if self._harness is None:
            try:
                self._harness = Harness(self.target, self.measurement)
            except TargetError as exc:
                if self._install_hint is None:
                    raise
                self.unavailable = f"target {self.target.name()} cannot run here: {exc}" \
                    + self._install_hint
                pytest.skip(self.unavailable)
        return self._harness

    def mark_stderr(self) -> None:
        """Failures from now on quote only the harness stderr written after this call."""
        if self._harness is not None and self._harness.usable:
            self._harness.stderr_mark()

    def discard(self) -> None:
        if self._harness is not None:
            self._harness.close()
            self._harness = None

    def describe(self) -> dict[str, Any]:
        """The target, with its interpreter's own account once the harness has started."""
        return self.target.describe(self._harness.hello if self._harness else None)
