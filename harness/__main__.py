"""`python -m harness`: see harness/run/cli.py."""

import sys

from harness.run.cli import main

sys.exit(main())
