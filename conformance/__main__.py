"""``python -m conformance``: run the kit against a target."""

import sys

from conformance.cli import main

sys.exit(main())
