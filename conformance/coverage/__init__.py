"""``--coverage``: which lines and branches of the implementation the run executed.

coverage.py runs inside every harness, in the target's own interpreter (the agent's
``measuring`` module); the kit's side lives here, one concern a module:
  measurement  what a harness is told (where its data goes, what it measures beyond the
               implementation's file), each contract's context label, and the check that
               the target's interpreter has coverage.py
  report       at the end of the run, on the xdist controller: coverage.py, again in the
               target's interpreter, combines every harness's data and writes its JSON and
               HTML reports
  figures      what the kit reads from that JSON, as small frozen classes: results.json's
               ``coverage`` object and the terminal's line
"""
