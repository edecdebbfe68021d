"""tools/mutation_selection.py: which contracts tools/mutation.py runs on a mutant, from the
coverage of the unmutated copy. Pure functions on hand-made data: no kit runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import coverage
import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def _selection_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_selection",
                                                  TOOLS / "mutation_selection.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up there.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


selection = _selection_module()

SOURCE = '''\
import os

TIMEOUT = 5


class Server:
    limit = 3

    def serve(self, poll=0.5):
        total = (poll +
                 self.limit)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            pass
        except OSError:
            return None
        return total
'''
MODULE_FILE = "server.py"


def _data(folder: Path, contexts: dict[str, list[int]]) -> coverage.CoverageData:
    """A coverage data file as the kit leaves it: lines of server.py per context."""
    data = coverage.CoverageData(basename=str(folder / "target" / "coverage-data" / ".coverage"))
    (folder / "target" / "coverage-data").mkdir(parents=True)
    for context, lines in contexts.items():
        data.set_context(context)
        data.add_lines({str(folder / MODULE_FILE): dict.fromkeys(lines)})
    data.write()
    return data


CONTEXTS = {
    "": [1, 3, 6, 7, 9],
    "echo.upper[TCPServer]": [10, 12, 13, 14, 15, 18],
    "echo.upper[ThreadingTCPServer]": [10, 12, 13, 18],
    "lifecycle.close[TCPServer]": [10, 12, 13, 18],
}


@pytest.fixture
def line_contracts(tmp_path: Path) -> dict[int, frozenset[str]]:
    _data(tmp_path, CONTEXTS)
    return dict(selection.read_line_contracts(tmp_path, MODULE_FILE, SOURCE))


def test_each_line_maps_to_the_contracts_that_ran_it(
        line_contracts: dict[int, frozenset[str]]) -> None:
    assert line_contracts[14] == {"echo.upper"}
    assert line_contracts[13] == {"echo.upper", "lifecycle.close"}
    assert line_contracts[9] == {selection.AT_IMPORT}
    # Never executed: the second except clause and its body.
    assert line_contracts[16] == line_contracts[17] == frozenset()
    assert set(line_contracts) == set(range(1, len(SOURCE.splitlines()) + 1))


def test_a_continuation_line_gets_what_its_statement_was_recorded_under(
        line_contracts: dict[int, frozenset[str]]) -> None:
    # coverage.py records `total = (poll +` on line 10 only.
    assert line_contracts[11] == line_contracts[10] == {"echo.upper", "lifecycle.close"}


def test_missing_coverage_data_is_an_error_not_a_guess(tmp_path: Path) -> None:
    with pytest.raises(selection.BaselineCoverageError, match="found 0"):
        selection.read_line_contracts(tmp_path, MODULE_FILE, SOURCE)
    _data(tmp_path, CONTEXTS)
    with pytest.raises(selection.BaselineCoverageError, match=r"does not measure one other\.py"):
        selection.read_line_contracts(tmp_path, "other.py", SOURCE)


def test_changed_lines_are_the_mutation_line_and_what_differs() -> None:
    mutated = SOURCE.replace("os.waitpid(-1, 0)", "os.waitpid(~1, 0)")
    assert selection.changed_line_numbers(SOURCE, mutated, 13) == (13,)
    # A mutation that spans two lines, and a mutation line the text does not show.
    spanning = SOURCE.replace("(poll +\n                 self.limit)",
                              "(poll -\n                 self.limit - 1)")
    assert selection.changed_line_numbers(SOURCE, spanning, 10) == (10, 11)
    assert selection.changed_line_numbers(SOURCE, SOURCE, 7) == (7,)
    # A line inserted (cosmic-ray does not, but the layout is not taken on trust) changes
    # what runs between its neighbours.
    inserted = SOURCE.replace("            pass\n", "            pass\n            pass\n")
    assert selection.changed_line_numbers(SOURCE, inserted, 14) == (14, 15, 16)


def test_a_mutation_is_judged_by_the_contracts_that_ran_its_lines(
        line_contracts: dict[int, frozenset[str]]) -> None:
    chosen = selection.select((14,), line_contracts)
    assert (chosen.scope, chosen.contracts) == (selection.SELECTED, ("echo.upper",))
    assert chosen.kit_arguments() == ["--contract", "echo.upper"]
    both = selection.select((13, 14), line_contracts)
    assert both.contracts == ("echo.upper", "lifecycle.close")
    assert both.describe() == "echo.upper, lifecycle.close"


def test_a_line_run_at_import_selects_the_whole_catalog(
        line_contracts: dict[int, frozenset[str]]) -> None:
    for line in (3, 7, 9):  # a module constant, a class attribute, a default argument
        chosen = selection.select((line, 14), line_contracts)
        assert chosen.scope == selection.WHOLE_CATALOG
        assert chosen.reason == f"line {line} runs at import"
        assert chosen.kit_arguments() == []
        assert chosen.describe() == "whole catalog"


def test_a_line_no_contract_runs_selects_nothing(
        line_contracts: dict[int, frozenset[str]]) -> None:
    chosen = selection.select((16,), line_contracts)
    assert chosen.scope == selection.UNREACHED
    assert chosen.reason == "no contract executes line 16"
    assert chosen.describe() == "none executes it"
    assert selection.select((16, 17), line_contracts).reason == (
        "no contract executes lines 16, 17")
