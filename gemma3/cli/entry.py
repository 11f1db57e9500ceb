"""The `gemma3` console script and `python -m gemma3`: the signal handlers come first.

This module imports only gemma3.cli.interrupt (os, signal, threading), so Ctrl-C is one line and
exit status 130 from the moment Python has started it: the command line's own modules (argparse,
dataclasses, pathlib, ...) and jax are all imported after the handlers are in place.
"""

from __future__ import annotations

import sys

from gemma3.cli.interrupt import exit_on_signals


def main() -> int:
    exit_on_signals("gemma3")
    from gemma3.cli.main import main as run

    return run(sys.argv[1:])
