"""`python -m gemma3`: the same command line as the `gemma3` console script."""

from gemma3.cli.entry import main

raise SystemExit(main())
