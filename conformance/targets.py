"""What the kit judges: an implementation module, the interpreter that runs it, and a prelude."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from typing import Any

STDLIB_MODULE = "socketserver"
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_PRELUDE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class TargetError(Exception):
    """The target cannot be run: the message names the option at fault and why."""


@dataclass(frozen=True)
class Target:
    """An implementation of the socketserver API, as the harness will load it.

    ``impl`` is a module name or the path of a ``.py`` file; ``python`` is the interpreter
    that runs the harness (a name on PATH or a path; the kit's own when None); ``prelude``
    is a ``module:callable`` called in the harness before the implementation is imported.
    """

    impl: str = STDLIB_MODULE
    python: str | None = None
    prelude: str | None = None
    # The --target preset this target came from; it names the reports.
    preset: str | None = None
    # A user's own handler class (module:Class or path.py:Class) checked instead of the
    # kit's reference handler, on the handler-side contracts.
    handler: str | None = None
    # A user's own server classes (module:Class or path.py:Class), checked instead of the
    # implementation's, each where the documented class it derives from is checked.
    server_classes: tuple[str, ...] = ()

    def name(self, hello: dict[str, Any] | None = None) -> str:
        """A short, file-name-safe label, used for the report folder.

        With the harness's ``hello`` at hand, another interpreter is named by what it is
        (``stdlib@cpython3.8``, ``stdlib@pypy3.9``), not by its file name. A preset's
        target is named after the preset."""
        if self.preset:
            return self.preset
        if self.impl == STDLIB_MODULE:
            label = "stdlib"
        elif self.is_file:
            label = os.path.splitext(os.path.basename(self.impl))[0]
        else:
            label = self.impl
        if self.python:
            if hello and hello.get("python_version"):
                major_minor = ".".join(hello["python_version"].split(".")[:2])
                label += f"@{hello.get('implementation', 'python')}{major_minor}"
            else:
                label += "@" + os.path.basename(self.python)
        if self.prelude:
            label += "+" + self.prelude.partition(":")[0]
        if self.handler:
            label += "+" + self.handler.rpartition(":")[2]
        for spec in self.server_classes:
            label += "+" + class_name(spec)
        return re.sub(r"[^\w.@+-]", "_", label)

    @property
    def is_file(self) -> bool:
        return self.impl.endswith(".py") or os.sep in self.impl

    def interpreter(self) -> str:
        """The absolute path of the interpreter, or TargetError if there is none."""
        if not self.python:
            return sys.executable
        if os.sep in self.python:
            path = os.path.abspath(self.python)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise TargetError(f"--python {self.python}: no executable interpreter there")
            return path
        found = shutil.which(self.python)
        if found is None:
            raise TargetError(f"--python {self.python}: no such interpreter on PATH")
        return found

    def check_syntax(self) -> None:
        """Reject malformed options before anything is started."""
        if self.is_file:
            if not os.path.isfile(self.impl):
                raise TargetError(f"--impl {self.impl}: no such file")
        elif not _DOTTED.match(self.impl):
            raise TargetError(f"--impl {self.impl}: not a module name or a .py file")
        if self.prelude is not None and not _PRELUDE.match(self.prelude):
            raise TargetError(f"--prelude {self.prelude}: expected module:callable")
        if self.handler is not None:
            _check_class_spec("--handler", self.handler)
        for spec in self.server_classes:
            _check_class_spec("--server-class", spec)
        names = [class_name(spec) for spec in self.server_classes]
        twice = next((name for name in names if names.count(name) > 1), None)
        if twice is not None:
            raise TargetError(f"--server-class: two classes named {twice}; the reports name "
                              "each class by its name, so give each a name of its own")
        self.interpreter()

    def harness_args(self) -> list[str]:
        """Arguments for the agent: files become absolute, since the agent may run elsewhere."""
        impl = os.path.abspath(self.impl) if self.is_file else self.impl
        args = ["--impl", impl]
        if self.prelude:
            args += ["--prelude", self.prelude]
        if self.handler:
            args += ["--handler", self.handler_spec()]
        for spec in self.server_classes:
            args += ["--server-class", absolute_spec(spec)]
        return args

    def handler_spec(self) -> str:
        """``handler`` with a file path made absolute, as the agent needs it."""
        return absolute_spec(self.handler or "")

    def describe(self, hello: dict[str, Any] | None = None) -> dict[str, Any]:
        """The target as results.json records it, with the interpreter's own account of
        itself once the harness has said hello."""
        info: dict[str, Any] = {"name": self.name(hello), "preset": self.preset,
                                "impl": self.impl, "python": self.python,
                                "prelude": self.prelude, "handler": self.handler,
                                "server_classes": self._describe_server_classes(hello)}
        if hello:
            info.update(python_version=hello.get("python_version"),
                        implementation=hello.get("implementation"),
                        executable=hello.get("python"), module_file=hello.get("module_file"),
                        workarounds=hello.get("workarounds", []))
        return info

    def _describe_server_classes(self, hello: dict[str, Any] | None) -> list[dict[str, Any]]:
        """Each --server-class as given, its class name, and the documented class it runs
        as (its ``kind``, once the harness has said hello; else None)."""
        kinds = {loaded["spec"]: loaded["kind"]
                 for loaded in (hello or {}).get("server_classes", ())}
        return [{"spec": spec, "name": class_name(spec), "kind": kinds.get(absolute_spec(spec))}
                for spec in self.server_classes]


def class_name(spec: str) -> str:
    """The name of the class ``module:Class`` names: how reports name a user's class."""
    return spec.rpartition(":")[2].rpartition(".")[2]


def absolute_spec(spec: str) -> str:
    """``module:Class`` with a file path made absolute, as the agent needs it (it may run
    elsewhere)."""
    module, _, attribute = spec.rpartition(":")
    if module.endswith(".py") or os.sep in module:
        module = os.path.abspath(module)
    return f"{module}:{attribute}"


def _check_class_spec(option: str, spec: str) -> None:
    module, _, attribute = spec.rpartition(":")
    if not module or not attribute:
        raise TargetError(f"{option} {spec}: expected module:Class")
    if (module.endswith(".py") or os.sep in module) and not os.path.isfile(module):
        raise TargetError(f"{option} {spec}: no such file {module}")
