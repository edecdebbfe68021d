"""The kit's options: declared once, read once into a RunOptions, checked once.

The plugin adds ``OPTIONS`` to pytest, in one ``conformance`` group; ``python -m conformance
--help`` prints the same declarations. A ``RunOptions`` is what a run was asked to do: it
makes the Target, selects the contracts and writes the command that reproduces a failure.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from conformance import bounds
from conformance.contracts.catalog import ALL_SERVERS, Contract
from conformance.presets import Preset, presets
from conformance.targets import STDLIB_MODULE, Target, TargetError, class_name

GROUP = "conformance"
GROUP_DESCRIPTION = "socketserver conformance"


class OptionsError(Exception):
    """The options cannot be run as given: the message names the option at fault."""


@dataclass(frozen=True)
class Option:
    """One command-line option, in the terms argparse (and so pytest) takes it.

    ``owner`` names the plugin that declares it when that is not the kit: the kit reads
    it and lists it in its own help, but does not declare it again."""

    flag: str
    help: str
    metavar: str | None = None
    default: Any = None
    action: str | None = None
    choices: tuple[str, ...] | None = None
    owner: str | None = None
    type: Callable[[str], Any] | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``addoption``/``add_argument`` for this option."""
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help}
        if self.action is not None:
            kwargs["action"] = self.action
        if self.metavar is not None:
            kwargs["metavar"] = self.metavar
        if self.choices is not None:
            kwargs["choices"] = self.choices
        if self.type is not None:
            kwargs["type"] = self.type
        # A repeatable option starts from a fresh, empty list.
        kwargs["default"] = [] if self.action == "append" else self.default
        return kwargs


_TARGET_OPTIONS = ("impl", "python", "prelude", "handler")
_REPEATABLE = ("target", "impl", "contract", "server", "server_class", "coverage_include")
# Options naming what the kit starts, beyond those of a target: any of them is bad usage
# until the harness has started with it.
STARTING_OPTIONS = (*_TARGET_OPTIONS, "server_class")

OPTIONS: tuple[Option, ...] = (
    Option("--target", metavar="NAME", action="append",
           help="a named target (see --list-targets): stdlib, cpython3.6 ... cpython3.13, "
                "pypy3, gevent, eventlet, eventlet-green, future, or one an installed package "
                "adds; not combined with --impl, --python, --prelude, --handler or "
                "--server-class (repeatable: one run, a report per target)"),
    Option("--impl", metavar="MODULE|FILE", action="append",
           help="the implementation under test: a module name or a .py file exposing the "
                f"socketserver API (default: {STDLIB_MODULE}; repeatable: one run, a report "
                "per implementation)"),
    Option("--python", metavar="INTERPRETER",
           help="the interpreter that runs the implementation: a name on PATH or a path "
                "(default: the one running the kit)"),
    Option("--prelude", metavar="MODULE:CALLABLE",
           help="called in the harness before the implementation is imported, "
                "e.g. gevent.monkey:patch_all"),
    Option("--handler", metavar="MODULE:CLASS",
           help="check your own request handler class (module:Class or path.py:Class) "
                "against the handler-side contracts"),
    Option("--server-class", action="append", metavar="MODULE:CLASS",
           help="check your own server class (module:Class or path.py:Class; repeatable) "
                "instead of the implementation's, against every contract of the server "
                "class it derives from (a ThreadingTCPServer subclass where "
                "ThreadingTCPServer is checked); one target only"),
    Option("--payloads", default="any", choices=("any", "text"),
           help="what clients send: any bytes (default) or UTF-8 text only, for handlers "
                "of text protocols"),
    Option("--contract", action="append", metavar="ID",
           help="check only contracts whose id matches this glob, e.g. 'echo.*' "
                "(repeatable)"),
    Option("--server", action="append", metavar="CLASS",
           help="check only on this server class (repeatable): " + ", ".join(ALL_SERVERS)),
    Option("--strict", action="store_true", default=False, owner="pytest",
           help="let should-level contracts (stdlib behaviour the documentation does not "
                "state) fail the run, not only be reported (pytest's own --strict: its "
                "strict checks of the kit's configuration pass too)"),
    Option("--expectations", metavar="FILE",
           help="the target's baseline of known failures (TOML); default for --target "
                "NAME: the baseline the kit has for NAME, if any"),
    Option("--update-expectations", action="store_true", default=False,
           help="rewrite the expectations file from this run, keeping reasons"),
    Option("--report-dir", default="reports", metavar="DIR",
           help="results.json and junit.xml go to DIR/<target>/ (default: reports)"),
    Option("--timeout-scale", metavar="FACTOR",
           help="multiply the kit's bounds on waits by FACTOR on a busy machine, e.g. 2 "
                "(default: the CONFORMANCE_TIMEOUT_SCALE environment variable, else 1); "
                "what a contract asks of the target stays the same"),
    Option("--coverage", action="store_true", default=False,
           help="measure, with coverage.py in the target's interpreter, the lines and "
                "branches of the implementation the run executed: figures in results.json "
                "and the summary, an annotated listing in DIR/<target>/coverage/ (see "
                "docs/coverage.md)"),
    Option("--coverage-include", action="append", metavar="GLOB",
           help="with --coverage, measure these files too (a path or glob relative to the "
                "current folder, or starting with a wildcard), e.g. 'mypkg/*' "
                "(repeatable; default: the implementation's module file alone)"),
    Option("--max-time", metavar="SECONDS", type=float,
           help="start no contract test after this many seconds: the reports list what did "
                "not run, and the run exits 1 (default: no limit)"),
)


def _timeout_scale(given: str | None) -> float:
    """The factor of --timeout-scale, else of the environment; OptionsError if malformed."""
    try:
        return (bounds.scale_from_environment() if given is None
                else bounds.check_scale(str(given), "--timeout-scale"))
    except ValueError as exc:
        raise OptionsError(str(exc)) from None


@dataclass(frozen=True)
class RunOptions:
    """What one run of the kit was asked to do, as its options said it.

    Field names are the options' ``dest`` names; ``profile`` and ``seed`` are Hypothesis'
    ``--hypothesis-profile`` (resolved to the profile in use) and ``--hypothesis-seed``."""

    target: tuple[str, ...] = ()
    impl: tuple[str, ...] = ()
    python: str | None = None
    prelude: str | None = None
    handler: str | None = None
    server_class: tuple[str, ...] = ()
    payloads: str = "any"
    contract: tuple[str, ...] = ()
    server: tuple[str, ...] = ()
    strict: bool = False
    expectations: str | None = None
    update_expectations: bool = False
    report_dir: str = "reports"
    max_time: float | None = None
    timeout_scale: float = 1.0
    coverage: bool = False
    coverage_include: tuple[str, ...] = ()
    profile: str | None = None
    seed: str | None = None

    @classmethod
    def read(cls, getoption: Callable[[str], Any], profile: str | None = None) -> RunOptions:
        """The options as ``getoption(dest)`` gives them (pytest's Config.getoption, or
        getattr on an argparse namespace)."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name in ("profile", "seed"):
                continue
            value = getoption(field.name)
            values[field.name] = tuple(value or ()) if field.name in _REPEATABLE else value
        values["timeout_scale"] = _timeout_scale(values["timeout_scale"])
        seed = getoption("hypothesis_seed")
        # pytest leaves them None when not given
        values["strict"] = bool(values["strict"])
        values["coverage"] = bool(values["coverage"])
        return cls(**values, profile=profile, seed=None if seed is None else str(seed))

    def check(self) -> None:
        """Refuse, with OptionsError, what cannot run: options that do not combine, an
        unknown target or server class, a malformed module or interpreter. Starts nothing."""
        given = [f"--{name.replace('_', '-')}" for name in STARTING_OPTIONS
                 if getattr(self, name)]
        if self.target and given:
            raise OptionsError(f"--target {self.target[0]} cannot be combined with {given[0]}")
        classes = self.server_classes() or ALL_SERVERS
        unknown = [name for name in self.server if name not in classes]
        if unknown:
            raise OptionsError(f"--server {unknown[0]}: no such server class; the server "
                               "classes are " + ", ".join(classes))
        if self.update_expectations and not (self.expectations or self.target):
            raise OptionsError("--update-expectations needs --expectations FILE or "
                               "--target NAME")
        if self.max_time is not None and self.max_time <= 0:
            raise OptionsError(f"--max-time {self.max_time:g}: must be a positive number "
                               "of seconds")
        if self.coverage_include:
            self._check_coverage_include()
        labels = self.labels()
        if len(labels) > 1:
            self._check_several(labels)
        try:
            for target in self.explicit_targets():
                target.check_syntax()
        except TargetError as exc:
            raise OptionsError(str(exc)) from None

    def _check_coverage_include(self) -> None:
        if not self.coverage:
            raise OptionsError(f"--coverage-include {self.coverage_include[0]} needs "
                               "--coverage")
        if not all(pattern.strip() for pattern in self.coverage_include):
            raise OptionsError("--coverage-include: an empty glob; name files, e.g. "
                               "'mypkg/*'")

    def _check_several(self, labels: list[str]) -> None:
        """Several targets in one run: each needs a report of its own, and a baseline file
        belongs to one target."""
        for option in ("expectations", "update_expectations", "server_class"):
            if getattr(self, option):
                raise OptionsError(f"--{option.replace('_', '-')} applies to one target; "
                                   f"this run has {len(labels)}")
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise OptionsError(f"two targets would share the report folder {twice[0]!r}: "
                               "name each once")

    def chosen_presets(self) -> list[Preset]:
        """The --target presets, in the order given (none without --target)."""
        known = presets()
        for name in self.target:
            if name not in known:
                raise OptionsError(f"--target {name}: unknown; known targets: "
                                   + ", ".join(sorted(known)))
        return [known[name] for name in self.target]

    def explicit_targets(self) -> list[Target]:
        """Without --target, one target per --impl (the stdlib without one), each with
        --python, --prelude and --handler."""
        if self.target:
            return []
        return [Target(impl=impl, python=self.python, prelude=self.prelude,
                       handler=self.handler, server_classes=self.server_class)
                for impl in self.impl or (STDLIB_MODULE,)]

    def server_classes(self) -> dict[str, str]:
        """The user's own server classes (--server-class): name -> spec, as given."""
        return {class_name(spec): spec for spec in self.server_class}

    def labels(self) -> list[str]:
        """Each target's name, as its report folder and (with several) its test ids show it:
        known before any interpreter starts."""
        named = [preset.name for preset in self.chosen_presets()]
        return named or [target.name() for target in self.explicit_targets()]

    def selects(self, contract: Contract, server: str | None = None) -> bool:
        """Whether --contract, --server and --handler keep this contract (on ``server``;
        without one: on any of its server classes, or any user class's kind)."""
        if self.contract and not any(fnmatch.fnmatchcase(contract.id, pattern)
                                     for pattern in self.contract):
            return False
        if self.handler and not contract.handler_side:
            return False
        if not self.server or (self.server_class and not server):
            # A user class's kind is known once the harness has loaded it.
            return True
        return server in self.server if server else bool(set(contract.servers)
                                                          & set(self.server))

    def _target_words(self, target: Target) -> list[str]:
        """The options that name ``target`` (and its baseline) on a command line."""
        words = []
        if target.preset:
            words += ["--target", target.preset]
        elif target.impl != STDLIB_MODULE:
            words += ["--impl", target.impl]
        for name in ("python", "prelude", "handler", "expectations"):
            value = getattr(self, name)
            if value:
                words += [f"--{name}", value]
        return words

    def reproduce(self, contract_id: str, server: str | None, target: Target) -> str:
        """The command that re-runs exactly this contract on this server class of this
        target, with the same profile, seed and strictness."""
        words = ["python", "-m", "conformance", *self._target_words(target)]
        user_classes = self.server_classes()
        if server in user_classes:
            # The user's class is the case: it alone, with no other class to leave out.
            words += ["--server-class", user_classes[server]]
        if self.payloads != "any":
            words += ["--payloads", self.payloads]
        words += ["--contract", contract_id]
        if server and server not in user_classes:
            words += ["--server", server]
        if self.strict:
            words.append("--strict")
        if self.timeout_scale != 1:
            words += ["--timeout-scale", f"{self.timeout_scale:g}"]
        if self.profile:
            words += ["--hypothesis-profile", self.profile]
        if self.seed is not None:
            words += ["--hypothesis-seed", self.seed]
        return shlex.join(words)
