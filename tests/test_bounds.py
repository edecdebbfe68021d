"""--timeout-scale: the bounds that are last resorts grow by the factor; what a contract
asks of the target (the durations the kit makes) does not."""

from __future__ import annotations

import pytest

from conformance import bounds


@pytest.fixture
def scaled():
    yield bounds.set_scale
    bounds.set_scale(1.0)


def test_last_resort_bounds_grow_and_the_kits_own_durations_stay(scaled) -> None:
    before = (bounds.HANDLER_REPORT, bounds.echo_timeout(1 << 20))
    own = (bounds.STALL, bounds.STREAM_HANDLER_TIMEOUT, bounds.SLOW_HANDLER)
    scaled(2.0)
    grown = (bounds.HANDLER_REPORT, bounds.echo_timeout(1 << 20))
    assert grown == tuple(2 * bound for bound in before)
    assert own == (bounds.STALL, bounds.STREAM_HANDLER_TIMEOUT, bounds.SLOW_HANDLER)
    scaled(3.0)
    regrown = bounds.HANDLER_REPORT
    assert regrown == 3 * before[0]


def test_every_scaled_name_is_a_bound() -> None:
    assert all(isinstance(getattr(bounds, name), float) for name in bounds.GROW_UNDER_LOAD)


def test_the_environment_sets_the_factor_and_the_report_records_it(
        run_kit, monkeypatch) -> None:
    monkeypatch.setenv(bounds.SCALE_ENV, "2.5")
    run = run_kit("--contract", "echo.upper", "--server", "TCPServer")
    assert run.code == 0, run.stdout + run.stderr
    assert run.results("stdlib")["timeout_scale"] == 2.5
