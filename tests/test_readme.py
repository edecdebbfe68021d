"""The documentation made from the kit's data is current, and the README stays short."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from conformance.expectations import loads
from tests.conftest import REPO

README = REPO / "README.md"
# The README is the front page: what to run, the options, how it works. Tables go to docs/.
README_LIMIT = 15_000


def _update_docs_module():
    spec = importlib.util.spec_from_file_location("update_docs",
                                                  REPO / "tools" / "update_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_are_current() -> None:
    for path, content in _update_docs_module().pages().items():
        assert path.exists() and path.read_text(encoding="utf-8") == content, (
            f"{path.relative_to(REPO)} is out of date: run `python tools/update_docs.py`")


def test_readme_sample_is_the_saved_run() -> None:
    update_docs = _update_docs_module()
    readme = README.read_text(encoding="utf-8")
    sample = update_docs.SAMPLE.read_text(encoding="utf-8")
    assert update_docs.render_readme(readme, sample) == readme, (
        "README.md's sample is out of date: run `python tools/update_docs.py`")


def test_readme_is_short() -> None:
    assert len(README.read_bytes()) < README_LIMIT


def test_readme_quickstart_runs_what_tox_defines() -> None:
    readme = README.read_text(encoding="utf-8")
    for command in ("python3 -m venv .venv && . .venv/bin/activate",
                    "python -m pip install tox", "tox -e stdlib", "tox -e selftest"):
        assert command in readme
    tox = (REPO / "tox.ini").read_text(encoding="utf-8")
    for env in set(re.findall(r"tox -e ([a-z0-9.-]+)", readme)) - {"NAME"}:
        assert f"[testenv:{env}]" in tox, f"README runs tox -e {env}, which tox.ini lacks"


@pytest.mark.parametrize("page", ["README.md", "docs/contracts.md", "docs/targets.md",
                                  "docs/results.md"])
def test_relative_links_lead_somewhere(page: str) -> None:
    path = REPO / page
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{page} links to missing {target}"


def test_readme_ci_workflow_runs_the_kit_per_target() -> None:
    readme = README.read_text(encoding="utf-8")
    (workflow,) = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert "matrix:" in workflow and "target:" in workflow
    assert "python -m conformance --target ${{ matrix.target }} -n auto" in workflow
    assert "actions/upload-artifact@" in workflow
    assert "\t" not in workflow


def test_readme_baseline_example_is_a_valid_baseline(tmp_path: Path) -> None:
    readme = README.read_text(encoding="utf-8")
    (example,) = [block for block in re.findall(r"```toml\n(.*?)```", readme, re.S)
                  if "[[expected]]" in block]
    # Its repro is a script beside the baseline, as a real one would be.
    for script in re.findall(r'repro = "([^"]+)"', example):
        (tmp_path / script).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / script).write_text("print('reproduced')\n")
    loads(example, str(tmp_path / "baseline.toml"))
