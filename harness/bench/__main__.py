"""`python -m harness.bench` (`nox -s bench`): see harness/bench/run.py."""

import sys

from harness.bench.run import main

sys.exit(main())
