"""coverage.py's reports of one target, made once at the end of the run on the xdist
controller (or the only process), after every harness has saved its data.

coverage.py itself does the work, run by the target's own interpreter: it combines the
parallel data files of every harness and forked child, writes its JSON report (the figures
the kit reads) and its HTML listing of the implementation's source, with the lines and
branches never executed marked and, on each line, the contexts (contracts) that ran it. The
target's interpreter, not the kit's: which lines are statements and which branches a line
has, coverage.py finds by compiling the source, and only the interpreter that ran it
compiles it as it ran.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from conformance import bounds
from conformance.coverage.figures import CoverageResults
from conformance.coverage.measurement import Measurement

# Under the target's report folder: coverage.py's HTML listing (its index.html).
HTML_FOLDER = "coverage"
JSON_REPORT = "coverage.json"
# The configuration of every coverage.py command: the kit's own, so that a configuration
# where the kit was started (a .coveragerc, a pyproject.toml naming ``source``) changes
# nothing.
_RC_FILE = "coveragerc"
_RC = "[run]\nbranch = True\n"


class _Failed(Exception):
    """A coverage.py command failed: the message is its last line of output."""


def report(interpreter: str, measurement: Measurement, report_folder: str, title: str,
           cwd: str) -> CoverageResults:
    """Combine ``measurement``'s data with ``interpreter``'s coverage.py and write its
    reports (the HTML listing under ``report_folder``); the figures, or why there are none
    (``error``: no harness saved any data, coverage.py failed). Each command is bounded
    by ``bounds.COVERAGE_REPORT``; paths in the listing are shown relative to ``cwd``."""
    rc_file = os.path.join(measurement.folder, _RC_FILE)
    with open(rc_file, "w", encoding="utf-8") as out:
        out.write(_RC)
    html = os.path.join(report_folder, HTML_FOLDER)
    shutil.rmtree(html, ignore_errors=True)
    json_report = os.path.join(measurement.folder, JSON_REPORT)
    try:
        for command in (["combine", measurement.folder],
                        ["json", "--show-contexts", "-o", json_report],
                        ["html", "--show-contexts", "-d", html, "--title", title]):
            _coverage(interpreter, [command[0], f"--rcfile={rc_file}", *command[1:]],
                      measurement, cwd)
        with open(json_report, encoding="utf-8") as data:
            figures = json.load(data)
    except (_Failed, OSError, ValueError) as exc:
        return CoverageResults(include=measurement.include, error=str(exc))
    return CoverageResults.from_report(figures, include=measurement.include,
                                       html=os.path.join(html, "index.html"),
                                       data=measurement.data_file)


def _coverage(interpreter: str, args: list[str], measurement: Measurement, cwd: str) -> None:
    """Run ``interpreter -m coverage ARGS`` on the measurement's data file."""
    env = {**os.environ, "COVERAGE_FILE": measurement.data_file}
    try:
        done = subprocess.run([interpreter, "-m", "coverage", *args], capture_output=True,
                              text=True, timeout=bounds.COVERAGE_REPORT, cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise _Failed(f"coverage {args[0]} did not finish within "
                      f"{bounds.COVERAGE_REPORT:g}s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise _Failed(f"coverage {args[0]}: " + (said[-1] if said else
                                                  f"exit status {done.returncode}"))
