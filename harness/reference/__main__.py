"""`python -m harness.reference`: see harness/reference/transformers_run.py."""

import sys

from harness.reference.transformers_run import main

sys.exit(main())
