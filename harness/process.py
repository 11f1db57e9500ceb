"""Child processes of a run (reference, checks): output streamed through a filter, a wall-clock
limit that kills the whole process group, and the cause of death named the way the result
schema wants it (oom, timeout, crash, compile)."""

from __future__ import annotations

import collections
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
    except BaseException:  # Ctrl-C: do not leave the model process running
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    reader.join(timeout=10)
    return Finished(proc.returncode, timed_out, time.perf_counter() - start, list(tail))


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
