"""`python -m harness`: see harness/run/cli.py.

Its imports (jax among them) take seconds. Until the run installs its own handlers
(harness.system.processes.stop_on_signals), SIGINT or SIGTERM ends the process at once with
the line and status a run stopped before any model ran gives, never a traceback from inside
an import.
"""

import os
import signal
import sys


def _stopped_while_starting(signum, frame) -> None:
    name = signal.Signals(signum).name
    os.write(2, f"python -m harness: stopped by {name} before any model ran; nothing "
                f"written\n".encode())
    os._exit(128 + signum)


for _signum in (signal.SIGINT, signal.SIGTERM):
    if signal.getsignal(_signum) is not signal.SIG_IGN:  # an inherited SIG_IGN stays
        signal.signal(_signum, _stopped_while_starting)

from harness.run.cli import main  # after the handlers, on purpose

sys.exit(main())
