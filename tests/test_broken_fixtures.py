"""Every contract can fail: each broken fixture makes exactly its own contract fail."""

from __future__ import annotations

import ast

import pytest

from conformance.contracts.catalog import catalog
from tests.conftest import BROKEN

# fixture file -> the one contract it breaks
BREAKS = {
    "tcp_request_proxy.py": "request.tcp_socket",
    "udp_request_list.py": "request.udp_tuple",
    "tcp_client_address_local.py": "handler.client_address",
    "handler_server_copy.py": "handler.server",
    "recv_text_mode.py": "echo.upper",
    "connection_left_open.py": "eof.ends_handler",
    "mixins_synchronous.py": "concurrency.stalled_client",
}


def test_every_contract_has_a_broken_fixture() -> None:
    assert {c.id for c in catalog()} == set(BREAKS.values())


def test_every_broken_fixture_is_listed() -> None:
    on_disk = {p.name for p in BROKEN.glob("[!_]*.py")}
    assert on_disk == set(BREAKS)


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_fixture_docstring_names_its_contract(fixture: str) -> None:
    docstring = ast.get_docstring(ast.parse((BROKEN / fixture).read_text()))
    assert docstring and docstring.startswith(f"Breaks {BREAKS[fixture]}:")


@pytest.mark.parametrize("fixture", sorted(BREAKS))
def test_exactly_that_contract_fails(run_kit, fixture: str) -> None:
    run = run_kit("--impl", str(BROKEN / fixture))
    assert run.code == 1, run.stdout + run.stderr
    outcomes = run.outcomes(fixture.removesuffix(".py"))
    failed = {cid for cid, outcome in outcomes.items() if outcome != "passed"}
    assert failed == {BREAKS[fixture]}, outcomes
    contract = next(c for c in run.results(fixture.removesuffix(".py"))["contracts"]
                    if c["id"] == BREAKS[fixture])
    assert contract["outcome"] == "failed"
    assert contract["message"]
    assert contract["reproduce"].startswith("python -m conformance --impl ")
