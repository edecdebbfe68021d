"""``python -m conformance report [DIR ...]``: a static site built from results.json files.

Every ``results.json`` found under the DIRs (default: ``reports``) becomes part of one view,
so runs from several machines or CI jobs merge: runs of the same target on the same
interpreter and platform share a column (the newest result of each contract wins), others
get columns of their own. The site goes to ``<first DIR>/index.html`` (or ``--out DIR``):

- ``index.html``: per target its interpreter, platform, versions, profile, verdict counts
  and a stacked bar of them; for each run with ``--coverage``, its line and branch
  figures, the lines only one contract reaches (contract -> count), and a link to
  coverage.py's HTML listing when that is under the site's folder (else where it is);
  then the matrix of contracts (grouped by family, rows where targets disagree first)
  against targets;
- ``pages/<target>/<contract id>.html``: one page per failure, error and expected failure,
  with each server class's message, counterexample, reproduce command, baseline entry and
  transcript.

Pages are self-contained (inline CSS, no script, no network). Exit status: 0 when the site
was built, 1 when no results.json was found, 2 for bad usage.

Fields read (all optional but ``contracts[].id``; what is missing is shown as unknown)::

    schema                  "socketserver-conformance/results" (a file with another is skipped)
    generated               ISO 8601 time of the run
    profile                 the Hypothesis profile
    target.name             the column's name (default: the results.json folder's name)
    target.python_version, target.implementation, target.executable
    target.impl, target.prelude, target.handler, target.module_file
    target.platform | platform                     e.g. "linux"
    target.kit_version | kit_version | kit.version
    target.packages | packages                     {"name": "version"} or ["name==version"]
    contracts[]: id, statement, level, reference, outcome, blocking
    contracts[].cases[]: server, outcome, message, counterexample, reproduce, duration,
                         blocking, xpassed, transcript, expectation
      - outcome: passed, failed, error, xfailed or skipped
      - expectation (or baseline): {"file", "reason", "link"}; without it the baseline
        entry is read from an xfailed case's message, "expected (FILE): REASON"
      - transcript: a list of events, in order:
            {"t": 0.012,              seconds since the example started
             "who": "client 1",       "client N", "handler" or "server"
             "event": "sent",         what happened: sent, received, closed, recv() ...
             "data": "b'abc'"}        what was sent or seen, or null
        absent: the page says "no transcript recorded".
    Without cases (older files), the contract's own outcome, message, counterexample and
    reproduce stand for one case.
    coverage                null or absent: no coverage shown for the run; else
      tool, html (relative to the results.json folder, or absolute), error,
      lines, branches: {"executed", "total", "percent"}
      files[]: path, one_contract_lines: {"count", "by_contract": {"id": [lines]}}
"""

from __future__ import annotations

import argparse
import os
import sys

from conformance.report_site.model import NotResults, Run, columns, find_results

EXIT_OK = 0
EXIT_NO_RESULTS = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance report",
        description="Build a static site (index.html and a page per failure) from every "
                    "results.json found under the folders.")
    parser.add_argument("dirs", nargs="*", default=["reports"], metavar="DIR",
                        help="folders searched recursively for results.json (default: "
                             "reports)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where index.html and pages/ go (default: the first DIR)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build the site; returns the exit status described in the module docstring."""
    parser = _parser()
    options = parser.parse_args(argv)
    missing = [d for d in options.dirs if not os.path.isdir(d)]
    if missing:
        print(f"{parser.prog}: error: {missing[0]}: no such folder", file=sys.stderr)
        return EXIT_USAGE
    runs = []
    for path in find_results(options.dirs):
        try:
            runs.append(Run.load(path))
        except NotResults as exc:
            print(f"{parser.prog}: skipped {exc}", file=sys.stderr)
    if not runs:
        print(f"{parser.prog}: no results.json under " + ", ".join(options.dirs),
              file=sys.stderr)
        return EXIT_NO_RESULTS
    from conformance.report_site.site import build

    out = options.out or options.dirs[0]
    merged = columns(runs)
    written = build(runs, merged, out)
    pages = len(written) - 1
    print(f"{written[0]}: {len(merged)} target{'s' if len(merged) != 1 else ''} from "
          f"{len(runs)} results.json; {pages} failure page{'s' if pages != 1 else ''}")
    return EXIT_OK
