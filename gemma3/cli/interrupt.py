"""Ctrl-C and SIGTERM for the command line: the process ends at once, whatever it is doing.

Python runs a signal handler only between two bytecodes of the main thread, while XLA compiles
and runs in C++ for seconds at a time: a KeyboardInterrupt arrives late, raises inside an import
as a traceback, or, raised while XLA's own threads are busy, crashed the interpreter's teardown
with a segmentation fault. Here Python's C-level handler only writes the signal number to a
wakeup pipe; a watcher thread blocked on that pipe (it needs the GIL for a moment, which XLA
releases while it compiles and runs) writes one line to stderr and calls os._exit: no unwinding,
no atexit handlers, no teardown racing XLA's threads. Text already streamed to stdout was
flushed token by token, so nothing generated is lost.
"""

from __future__ import annotations

import os
import signal
import threading

# Exit statuses are 128 + signal number, as shells report. Keyed by plain int: the wakeup pipe
# hands the watcher bare signal numbers (Signals is an IntEnum: its members hash as those ints).
EXIT_STATUS: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
WORDS: dict[int, str] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def exit_on_signals(prog: str) -> None:
    """From now on SIGINT exits with status 130 and SIGTERM with 143, each with the one line
    `{prog}: interrupted` / `{prog}: terminated` on stderr, and SIGPIPE ends it silently. Call
    from the main thread, before the slow imports. A signal the process was started with
    ignored (SIGINT for a background job of a non-interactive shell) stays ignored, as the
    shell meant."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # the C handler must never block on a full pipe
    watched = [s for s in EXIT_STATUS if signal.getsignal(s) is not signal.SIG_IGN]
    for signum in watched:
        signal.signal(signum, _leave_it_to_the_watcher)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    # Writing to a closed pipe (`gemma3 generate ... | head`) ends the process quietly, as it
    # does other Unix tools, instead of a BrokenPipeError from inside the decode loop.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    threading.Thread(target=_watch, args=(read_fd, prog), name="gemma3-signals",
                     daemon=True).start()


def _leave_it_to_the_watcher(signum, frame) -> None:
    """The Python-level handler: nothing to do (the watcher thread exits), and no
    KeyboardInterrupt to unwind through half-finished work."""


def _watch(read_fd: int, prog: str) -> None:
    while True:
        for signum in os.read(read_fd, 64):
            if signum in EXIT_STATUS:
                os.write(2, f"{prog}: {WORDS[signum]}\n".encode())
                os._exit(EXIT_STATUS[signum])
