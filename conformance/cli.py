"""The command line: ``python -m conformance [--impl ...] [--python ...] [--prelude ...]``.

Exit status: 0 when every contract holds (or fails only as expected), 1 when any contract
fails, 2 with a one-line error for bad usage, 5 when the options select no contract.
Arguments the kit does not know are passed to pytest (``-n auto``, ``-x``, ``-k ...``).
"""

from __future__ import annotations

import argparse
import os
import sys

import pytest

from conformance.contracts.catalog import catalog
from conformance.harness import HarnessError
from conformance.plugin import probe
from conformance.presets import entry_points, presets
from conformance.reporting.catalog_table import markdown_table
from conformance.targets import Target, TargetError

KIT_INI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kit.ini")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_CONTRACT = 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Check a socketserver implementation against the documented contracts. "
                    "Unrecognised arguments are passed to pytest.",
    )
    parser.add_argument("--target", default=None, metavar="NAME",
                        help="a named target (see --list-targets); not combined with "
                             "--impl, --python or --prelude")
    parser.add_argument("--impl", default="socketserver", metavar="MODULE|FILE",
                        help="module name or .py file exposing the socketserver API "
                             "(default: socketserver)")
    parser.add_argument("--python", default=None, metavar="INTERPRETER",
                        help="interpreter running the implementation: a name on PATH or a "
                             "path (default: this one)")
    parser.add_argument("--prelude", default=None, metavar="MODULE:CALLABLE",
                        help="called before the implementation is imported, "
                             "e.g. gevent.monkey:patch_all")
    parser.add_argument("--handler", default=None, metavar="MODULE:CLASS",
                        help="check your own request handler class (module:Class or "
                             "path.py:Class) against the handler-side contracts")
    parser.add_argument("--payloads", default="any", choices=("any", "text"),
                        help="what clients send: any bytes (default) or UTF-8 text only")
    parser.add_argument("--report-dir", default="reports", metavar="DIR",
                        help="reports go to DIR/<target>/ (default: reports)")
    parser.add_argument("--contract", action="append", default=[], metavar="ID",
                        help="check only contracts whose id matches this glob (repeatable)")
    parser.add_argument("--server", action="append", default=[], metavar="CLASS",
                        help="check only on this server class (repeatable)")
    parser.add_argument("--expectations", default=None, metavar="FILE",
                        help="the target's baseline of known failures (TOML); default for "
                             "--target NAME: fixtures/expectations/NAME.toml if present")
    parser.add_argument("--update-expectations", action="store_true",
                        help="rewrite the expectations file from this run, keeping reasons")
    parser.add_argument("--strict", action="store_true",
                        help="let should-level contracts (stdlib behaviour the documentation "
                             "does not state) fail the run, not only be reported")
    parser.add_argument("--list-contracts", action="store_true",
                        help="print the contract catalog as a Markdown table and exit")
    parser.add_argument("--list-targets", action="store_true",
                        help="print the named targets and whether each can run here")
    return parser


def _plugin_is_installed() -> bool:
    return any(ep.value == "conformance.plugin"
               for ep in entry_points("pytest11"))


def pytest_args(options: argparse.Namespace, extra: list[str]) -> list[str]:
    """The pytest command line that runs the contract tests for these options."""
    args = ["-c", KIT_INI, "--pyargs", "conformance.contracts",
            "--report-dir", options.report_dir]
    if not _plugin_is_installed():
        args += ["-p", "conformance.plugin"]
    for name in ("target", "impl", "python", "prelude", "handler", "expectations"):
        value = getattr(options, name)
        if value and not (name == "impl" and value == "socketserver"):
            args += [f"--{name}", value]
    if options.update_expectations:
        args.append("--update-expectations")
    if options.payloads != "any":
        args += ["--payloads", options.payloads]
    for contract_id in options.contract:
        args += ["--contract", contract_id]
    for server_class in options.server:
        args += ["--server", server_class]
    if options.strict:
        args.append("--strict-should")
    return args + extra


def _check_target(options: argparse.Namespace) -> None:
    """Bad options end here, before pytest starts; a preset that cannot run here is not an
    error (its contracts are skipped with the reason)."""
    if options.target is None:
        probe(Target(impl=options.impl, python=options.python, prelude=options.prelude,
                     handler=options.handler))
        return
    combined = [f"--{name}" for name in ("python", "prelude", "handler")
                if getattr(options, name)]
    if options.impl != "socketserver":
        combined.insert(0, "--impl")
    if combined:
        raise TargetError(f"--target {options.target} cannot be combined with {combined[0]}")
    if options.target not in presets():
        raise TargetError(f"--target {options.target}: unknown; known targets: "
                          + ", ".join(sorted(presets())))


def main(argv: list[str] | None = None) -> int:
    """Run the kit; returns the exit status described in the module docstring."""
    if (sys.argv[1:] if argv is None else argv)[:1] == ["report"]:  # the report site
        from conformance.report_site import main as report_main
        return report_main(list(sys.argv[2:] if argv is None else argv[1:]))
    parser = _parser()
    options, extra = parser.parse_known_args(argv)
    if options.list_contracts:
        print(markdown_table(catalog()), end="")
        return EXIT_OK
    if options.list_targets:
        for preset in presets().values():
            reason = preset.unavailable()
            if reason is None:
                target = preset.target()
                try:
                    probe(target)
                except (TargetError, HarnessError) as exc:
                    reason = str(exc).splitlines()[0] + preset.install_hint(target.python)
            print(f"{preset.name:<15} {preset.description}\n{'':<15} "
                  + (f"unavailable: {reason}" if reason else "available"))
        return EXIT_OK
    try:
        _check_target(options)
    except (TargetError, HarnessError) as exc:
        first_line = str(exc).strip().splitlines()[0]
        print(f"{parser.prog}: error: {first_line}", file=sys.stderr)
        return EXIT_USAGE
    code = pytest.main(pytest_args(options, extra))
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print(f"{parser.prog}: no contract was selected", file=sys.stderr)
        return EXIT_NO_CONTRACT
    return int(code)
