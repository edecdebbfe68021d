"""Where things are: contracts use the harness through its package's names only, and a
contract id's prefix names the module that declares it. Fast: the sources are parsed, no
kit runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import conformance.harness
from tests.conftest import REPO

CONTRACTS = REPO / "conformance" / "contracts"
MODULES = sorted(CONTRACTS.glob("*.py"))
HARNESS = "conformance.harness"


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) for every import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_contracts_import_no_harness_submodule(path: Path) -> None:
    """A contract module imports ``conformance.harness``'s public names, never one of its
    modules: what the agent calls things stays inside the harness."""
    wrong = [f"line {line}: {module}" for line, module, _ in _imports(path)
             if module.startswith(HARNESS + ".")]
    assert not wrong, f"{path.name} imports harness modules: {wrong}"
    unlisted = [f"line {line}: {name}" for line, module, names in _imports(path)
                if module == HARNESS for name in names
                if name not in conformance.harness.__all__]
    assert not unlisted, f"{path.name} imports names outside conformance.harness.__all__: " \
        f"{unlisted}"


def _declared_ids(path: Path) -> list[str]:
    """The ids of the ``@contract("...")`` decorators in the file."""
    ids = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)
                        and decorator.func.id == "contract" and decorator.args
                        and isinstance(decorator.args[0], ast.Constant)):
                    ids.append(decorator.args[0].value)
    return ids


@pytest.mark.parametrize("path", [path for path in MODULES if path.name.startswith("test_")],
                         ids=lambda path: path.name)
def test_contract_ids_name_their_module(path: Path) -> None:
    """Every contract a module declares has the id prefix that names the module
    (``errors.*`` in test_errors.py), and every contract module declares one."""
    ids = _declared_ids(path)
    assert ids, f"{path.name} declares no contract"
    strangers = [cid for cid in ids if f"test_{cid.split('.', 1)[0]}.py" != path.name]
    assert not strangers, f"{path.name} declares contracts of other modules: {strangers}"
