"""Child processes of a run (reference, checks): output streamed through a filter, a wall-clock
limit that kills the whole process group, and the cause of death named the way the result
schema wants it (oom, timeout, crash, compile).

SIGTERM and SIGINT to the harness raise `Interrupted` in its main thread (`stop_on_signals`):
whatever is running unwinds, so run_child kills its child's process group and the `finally`
and `except BaseException` blocks remove partial checkpoints and temporary directories.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

TAIL_LINES = 60
OOM_CODES = (-signal.SIGKILL, 128 + signal.SIGKILL)  # the kernel's OOM killer sends SIGKILL
COMPILE_HINTS = ("XlaRuntimeError", "compilation failed", "Compilation failure",
                 "failed to compile")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # like KeyboardInterrupt: not caught by `except Exception`
    """SIGTERM or SIGINT arrived; `exit_code` is 128 + the signal number (130, 143)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _Stop:
    """What the handler does: raise at once, or, inside a deferred block, after it."""

    deferring = 0
    pending: int | None = None


@contextlib.contextmanager
def stop_on_signals():
    """SIGINT and SIGTERM raise Interrupted while inside; the first one only: later ones are
    ignored, so that the clean-up it triggers is not itself cut short."""

    def handler(signum, frame):
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if _Stop.deferring:
            _Stop.pending = signum
        else:
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        _Stop.pending = None


@contextlib.contextmanager
def deferred_signals():
    """A stop signal waits until the block is done (a rename, a result file's rewrite), so an
    interruption never lands between a write and the rename that publishes it. (Python runs
    signal handlers in the main thread, so a flag the handler reads is enough.)"""
    _Stop.deferring += 1
    try:
        yield
    finally:
        _Stop.deferring -= 1
    if not _Stop.deferring and _Stop.pending is not None:
        raise Interrupted(_Stop.pending)


@dataclasses.dataclass
class Finished:
    returncode: int
    timed_out: bool
    seconds: float
    tail: list[str]


def run_child(args: list[str], *, env: dict, cwd, timeout: float | None,
              show: Callable[[str], bool] = lambda line: False) -> Finished:
    """Runs args; lines for which show(line) is true are echoed to stderr as they come."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)  # its own group: a timeout kills it all
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def pump():
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if show(line):
                sys.stderr.write("    " + line)
                sys.stderr.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except BaseException:  # Interrupted, Ctrl-C: do not leave the model process running
        _kill_group(proc)
        raise
    reader.join(timeout=10)
    return Finished(proc.returncode, timed_out, time.perf_counter() - start, list(tail))


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL to the child's whole process group (its own workers too), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def cause(done: Finished, stage: str, timeout: float | None) -> str:
    """`oom: ...`, `timeout: ...`, `compile: ...` or `crash: ...` (<= 200 characters)."""
    if done.timed_out:
        text = f"timeout: {stage} ran past {timeout:.0f} s"
    elif done.returncode in OOM_CODES:
        text = f"oom: process killed (exit {done.returncode}) while {stage}"
    elif any(h in line for line in done.tail for h in COMPILE_HINTS):
        text = f"compile: XLA failed while {stage}: {_last_error(done.tail)}"
    else:
        text = f"crash: exit {done.returncode} while {stage}: {_last_error(done.tail)}"
    return text[:200]


def _last_error(tail: list[str]) -> str:
    for line in reversed(tail):
        if "Error" in line or "error" in line:
            return line.strip()[:120]
    return (tail[-1].strip() if tail else "no output")[:120]
