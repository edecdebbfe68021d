"""The command line: ``python -m conformance [options] [pytest arguments]``.

The options are the pytest plugin's (``conformance.options.OPTIONS``), checked by the
plugin: this command adds only ``--list-contracts``, ``--list-targets``, ``--version`` and a
help of the kit's own, and hands every other argument to pytest unchanged.

Exit status: 0 when every contract holds (or fails only as expected, or is should-level
without --strict), 1 when any contract fails, 2 with a one-line error for bad usage, 5 when
the options select no contract.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

import pytest

from conformance import __version__
from conformance.options import GROUP_DESCRIPTION, OPTIONS, OptionsError, RunOptions
from conformance.presets import entry_points, presets
from conformance.targets import TargetError

PROG = "python -m conformance"
KIT_INI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kit.ini")
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_CONTRACT = 5
_EPILOG = """\
Any other argument goes to pytest: -n auto (pytest-xdist), -x, --maxfail N, -k EXPR, -v, ...
(python -m pytest --help lists them).

Exit status: 0 every contract holds (or fails only as its baseline expects, or is
should-level without --strict); 1 a contract failed; 2 bad usage, with a one-line error;
5 the options select no contract."""


class UsageFailure(Exception):
    """Bad usage: the message is the one line the command prints."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageFailure(message)


def _profiles_help() -> str:
    from conformance import profiles

    described = ", ".join(f"{name} ({profile.max_examples} examples)"
                          for name, profile in profiles.PROFILES.items())
    return (f"how hard Hypothesis searches: {described}; default: ${profiles.ENV_VAR}, "
            "else ci when $CI is set, else dev")


def help_parser() -> argparse.ArgumentParser:
    """The command's parser: the plugin's options, Hypothesis' two the kit relies on, and
    the command's own. It only reads the command's own and prints the help."""
    parser = _Parser(prog=PROG, usage=f"{PROG} [options] [pytest arguments]",
                     description="Check an implementation of Python's socketserver API "
                                 "against the documented contracts.",
                     epilog=_EPILOG, add_help=False, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group(GROUP_DESCRIPTION)
    for option in OPTIONS:
        group.add_argument(option.flag, **option.kwargs())
    hypothesis = parser.add_argument_group("Hypothesis (options of its pytest plugin)")
    hypothesis.add_argument("--hypothesis-profile", metavar="NAME", help=_profiles_help())
    hypothesis.add_argument("--hypothesis-seed", metavar="SEED",
                            help="the seed of the search (recorded in results.json and in "
                                 "each reproduce command)")
    own = parser.add_argument_group("this command").add_mutually_exclusive_group()
    own.add_argument("--list-contracts", action="store_true",
                     help="print the contracts the options select (--contract, --server, "
                          "--handler) as a Markdown table, and exit")
    own.add_argument("--list-targets", action="store_true",
                     help="print the named targets and whether each can run here, and exit")
    own.add_argument("-V", "--version", action="store_true",
                     help="print the kit's version (and pytest's and Hypothesis'), and exit")
    own.add_argument("-h", "--help", action="store_true",
                     help="print this help, and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the kit; returns the exit status described in the module docstring."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["report"]:
        # python -m conformance report [DIR ...]: the report site, from results.json files.
        from conformance.report_site import main as report_main

        return report_main(args[1:])
    parser = help_parser()
    try:
        known, _ = parser.parse_known_args(args)
        if known.help:
            print(parser.format_help(), end="")
            return EXIT_OK
        if known.version:
            print(_version())
            return EXIT_OK
        if known.list_contracts:
            return _list_contracts(RunOptions.read(lambda name: getattr(known, name, None)))
        if known.list_targets:
            _list_targets()
            return EXIT_OK
    except (UsageFailure, OptionsError) as exc:
        return _usage_error(str(exc))
    return _run(args)


def _usage_error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _version() -> str:
    import hypothesis

    return (f"socketserver-conformance {__version__} "
            f"(pytest {pytest.__version__}, hypothesis {hypothesis.__version__})")


def _list_contracts(options: RunOptions) -> int:
    from conformance.contracts.catalog import catalog
    from conformance.reporting.catalog_table import markdown_table

    options.check()
    selected = [contract for contract in catalog() if options.selects(contract)]
    if not selected:
        print(f"{PROG}: no contract was selected", file=sys.stderr)
        return EXIT_NO_CONTRACT
    print(markdown_table(selected), end="")
    return EXIT_OK


def _list_targets() -> None:
    from conformance.harness import HarnessError
    from conformance.plugin import probe

    for preset in presets().values():
        target, reason = preset.resolve()
        if reason is None:
            try:
                probe(target)
            except (TargetError, HarnessError) as exc:
                reason = str(exc).splitlines()[0] + preset.install_hint(target.python)
        print(f"{preset.name:<15} {preset.description}\n{'':<15} "
              + (f"unavailable: {reason}" if reason else "available"))


def _plugin_is_installed() -> bool:
    return any(ep.value == "conformance.plugin" for ep in entry_points("pytest11"))


def pytest_args(args: list[str]) -> list[str]:
    """The pytest command line that runs the contract tests with these arguments."""
    kit = ["-c", KIT_INI, "--pyargs", "conformance.contracts"]
    if not _plugin_is_installed():
        kit += ["-p", "conformance.plugin"]
    return kit + args


class UsageErrors:
    """A pytest plugin for this command: catches the usage errors of pytest and of the
    kit's plugin, so that the command prints each as its one line (pytest would print
    the whole usage text with it)."""

    def __init__(self) -> None:
        self.message: str | None = None

    @contextlib.contextmanager
    def _caught(self) -> Iterator[None]:
        try:
            yield
        except pytest.UsageError as exc:
            self.message = one_line(str(exc))
            # Without arguments, pytest prints nothing: the command prints the line.
            raise pytest.UsageError() from None

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_parse(self) -> Iterator[None]:
        with self._caught():
            return (yield)

    # The kit's plugin refuses bad options when pytest is configured, inside this hook
    # (pytest_configure itself, a historic hook, takes no wrapper).
    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_main(self) -> Iterator[None]:
        with self._caught():
            return (yield)


def one_line(message: str) -> str:
    """The line that says what is wrong: argparse's "PROG: error: ..." line after the usage
    text, else the first line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if ": error: " in line:
            return line.split(": error: ", 1)[1]
    return lines[0] if lines else "bad usage"


def _run(args: list[str]) -> int:
    errors = UsageErrors()
    code = pytest.main(pytest_args(args), plugins=[errors])
    if errors.message is not None:
        return _usage_error(errors.message)
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print(f"{PROG}: no contract was selected", file=sys.stderr)
        return EXIT_NO_CONTRACT
    return int(code)
