"""The standard library's socketserver under another name: the first target of the
benchmark's catalog run (tools/bench_runs.py).

The kit runs targets one after another, so the first target's tests are the first of every
xdist worker and carry what starting a worker costs. That is not small: in a fresh folder
the first test drawing text makes Hypothesis build its Unicode character map (about 2 s of
CPU, written to .hypothesis/unicode_data/), in every worker at once, which took 35-55 s
per worker on 2 busy cores. This target takes that cost, and the stdlib itself, the
reference every other target is compared with, runs later, amid the fixtures.
"""

from socketserver import *  # noqa: F403
