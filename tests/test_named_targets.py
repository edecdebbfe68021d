"""Named targets: presets resolve, an unavailable one is skipped with its reason."""

from __future__ import annotations

from conformance.presets import CPYTHON_VERSIONS, presets


def test_every_documented_preset_exists() -> None:
    names = set(presets())
    assert {"stdlib", "pypy3", "gevent", "eventlet", "eventlet-green", "future"} <= names
    assert {f"cpython{v}" for v in CPYTHON_VERSIONS} <= names


def test_an_unknown_target_is_exit_2(run_kit) -> None:
    run = run_kit("--target", "cpython2.5")
    assert run.code == 2
    assert "--target cpython2.5: unknown" in run.stderr


def test_a_target_with_a_missing_package_is_skipped_with_the_reason(run_kit) -> None:
    run = run_kit("--target", "future", "--contract", "handler.server", "--server",
                  "TCPServer")
    if run.code == 0 and run.outcomes("future") == {"handler.server": "passed"}:
        return  # python-future is installed here: nothing to skip.
    assert run.code == 0, run.stdout + run.stderr
    (contract,) = run.results("future")["contracts"]
    assert contract["outcome"] == "skipped"
    assert "pip install future" in contract["cases"][0]["message"]


def test_target_cannot_be_combined_with_impl(run_kit) -> None:
    run = run_kit("--target", "stdlib", "--impl", "socketserver_like")
    assert run.code == 2
