"""Named targets (``--target NAME``): the implementations people ship, ready to check.

Third parties add presets through the ``socketserver_conformance.targets`` entry point
group: each entry point names a Preset, or a callable returning one or a list of them.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata

from conformance.targets import STDLIB_MODULE, Target

ENTRY_POINT_GROUP = "socketserver_conformance.targets"
CPYTHON_VERSIONS = tuple(f"3.{minor}" for minor in range(6, 14))


def _works(python: str) -> bool:
    try:
        subprocess.run([python, "-c", "pass"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def find_cpython(version: str) -> str | None:
    """An interpreter for CPython ``version`` (e.g. "3.8"): pyenv's newest 3.8.x, else
    ``python3.8`` on PATH if it runs."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}"))
    found.sort(key=lambda path: [int(p) if p.isdigit() else 0
                                 for p in path.split(os.sep)[-3].split(".")])
    for candidate in reversed(found):
        if _works(candidate):
            return candidate
    on_path = shutil.which(f"python{version}")
    return on_path if on_path and _works(on_path) else None


def _on_path(name: str) -> Callable[[], str | None]:
    def find() -> str | None:
        found = shutil.which(name)
        return found if found and _works(found) else None

    return find


@dataclass(frozen=True)
class Preset:
    """A named target: what to import, with which interpreter, after which prelude.

    ``find_python`` locates the interpreter (None: the kit's own); ``requires`` are the
    packages that interpreter needs, for the message when they are missing."""

    name: str
    description: str
    impl: str = STDLIB_MODULE
    prelude: str | None = None
    find_python: Callable[[], str | None] | None = field(default=None, compare=False)
    requires: tuple[str, ...] = ()

    def resolve(self) -> tuple[Target, str | None]:
        """The target to run, and why it cannot run on this machine (None if it can).

        Looks for the interpreter once. Never raises TargetError: a missing interpreter or
        package is a reason to skip every contract, which the plugin does."""
        python = self.find_python() if self.find_python is not None else None
        target = Target(impl=self.impl, python=python, prelude=self.prelude, preset=self.name)
        if self.find_python is not None and python is None:
            return target, f"target {self.name}: no interpreter for it on this machine"
        return target, None

    def target(self) -> Target:
        """The target to run (see ``resolve``)."""
        return self.resolve()[0]

    def unavailable(self) -> str | None:
        """Why this preset cannot run on this machine, or None (see ``resolve``)."""
        return self.resolve()[1]

    def install_hint(self, python: str | None) -> str:
        if not self.requires:
            return ""
        return (f"; install what it needs with: {python or sys.executable} -m pip install "
                + " ".join(self.requires))


def _builtin() -> list[Preset]:
    presets = [Preset("stdlib", "the running interpreter's socketserver")]
    presets += [Preset(f"cpython{v}", f"the socketserver of CPython {v}",
                       find_python=lambda v=v: find_cpython(v)) for v in CPYTHON_VERSIONS]
    presets += [
        Preset("pypy3", "PyPy3's socketserver", find_python=_on_path("pypy3")),
        Preset("gevent", "the stdlib after gevent.monkey.patch_all()",
               prelude="gevent.monkey:patch_all", requires=("gevent",)),
        Preset("eventlet", "the stdlib after eventlet.monkey_patch()",
               prelude="eventlet:monkey_patch", requires=("eventlet",)),
        Preset("eventlet-green", "eventlet's own green module, eventlet.green.SocketServer",
               impl="eventlet.green.SocketServer", requires=("eventlet",)),
        Preset("future", "future.backports.socketserver from the python-future package",
               impl="future.backports.socketserver", requires=("future",)),
    ]
    return presets


def _from_entry_points() -> list[Preset]:
    found: list[Preset] = []
    for entry_point in entry_points(ENTRY_POINT_GROUP):
        loaded = entry_point.load()
        value = loaded() if callable(loaded) and not isinstance(loaded, Preset) else loaded
        found += value if isinstance(value, list) else [value]
    return found


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group``, on every Python the kit runs on."""
    everything = metadata.entry_points()
    if hasattr(everything, "select"):
        return list(everything.select(group=group))
    # Python 3.9 (and PyPy3.9): a dict of lists by group.
    return list(everything.get(group, []))


def presets() -> dict[str, Preset]:
    """Every preset by name: the built-in ones, then those of installed packages."""
    return {preset.name: preset for preset in _builtin() + _from_entry_points()}
