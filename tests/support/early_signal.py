"""Ctrl-C in the first instants of a command: start it, send SIGINT after `after` seconds, and
read what it printed. PYTHONPROFILEIMPORTTIME makes the child list every import as it finishes,
so a test can tell where the signal landed: after our first module (whose import installs the
handlers) and before jax finished importing means during the imports, what the test is about.
Python's own start-up (site, before any of our code runs) is the one window no code of ours can
cover; a try that lands there is repeated, and the test says how many were.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time

from tests.support import REPO_ROOT


@dataclasses.dataclass
class Stopped:
    status: int
    imports: list[str]  # modules whose import finished before the signal
    lines: list[str]  # everything else the child wrote to stderr

    def landed_during_import(self, first_module: str) -> bool:
        return first_module in self.imports and "jax" not in self.imports


def interrupt_at(args: list[str], after: float) -> Stopped:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "JAX_PLATFORMS": "cpu",
           "PYTHONPROFILEIMPORTTIME": "1"}
    process = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env,
                               preexec_fn=_default_sigint)  # noqa: PLW1509 - one syscall
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    imports, lines = [], []
    for line in err.decode().splitlines():
        if line.startswith("import time:"):
            imports.append(line.rsplit("|", 1)[1].strip())
        else:
            lines.append(line)
    return Stopped(process.returncode, imports, lines)


def interrupt_during_import(args: list[str], first_module: str, after: float = 0.05,
                            tries: int = 8) -> tuple[Stopped, int]:
    """The first try whose signal landed during the imports, and how many tries that took."""
    for attempt in range(1, tries + 1):
        stopped = interrupt_at(args, after)
        if stopped.landed_during_import(first_module):
            return stopped, attempt
    raise AssertionError(f"in {tries} tries SIGINT at {after} s never landed during the "
                         f"imports of {' '.join(args)}; last: {stopped}")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
