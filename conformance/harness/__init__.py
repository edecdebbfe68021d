"""The harness: runs the implementation under test in its own interpreter and reports back."""

from conformance.harness.observations import Handler
from conformance.harness.process import AGENT_PATH, Harness, HarnessError, ServedServer

__all__ = ["AGENT_PATH", "Handler", "Harness", "HarnessError", "ServedServer"]
