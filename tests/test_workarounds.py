"""The harness changes a target's runtime only against a defect of the target's own stack
that a committed reproduction shows, and says so."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from conformance.harness.agent import workarounds


def test_greenlet_s_optional_cleanup_is_off_once_the_target_has_loaded_greenlet(
        monkeypatch: pytest.MonkeyPatch) -> None:
    switched = []
    greenlet = SimpleNamespace(
        _greenlet=SimpleNamespace(enable_optional_cleanup=switched.append))
    monkeypatch.setitem(sys.modules, "greenlet", greenlet)
    assert workarounds.apply() == [workarounds.GREENLET_CLEANUP_OFF]
    assert switched == [False]


def test_a_target_without_greenlet_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "greenlet", raising=False)
    assert workarounds.apply() == []

