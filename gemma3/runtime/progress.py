"""Progress lines on stderr for long work (loading shards, decoding tokens)."""

from __future__ import annotations

import sys
import time


class Progress:
    """`label: 120/340 (1.2/2.0 GB) 3.1 s`, redrawn in place on a terminal, a line every few
    seconds otherwise. Enabled by default only for work above `min_bytes`."""

    def __init__(self, label: str, total_items: int, total_bytes: int = 0, *,
                 enabled: bool | None = None, min_bytes: int = 256 * 2**20, stream=None):
        self.label, self.total_items, self.total_bytes = label, total_items, total_bytes
        self.stream = stream or sys.stderr
        self.enabled = total_bytes >= min_bytes if enabled is None else enabled
        self.items = self.bytes = 0
        self.start = self._last = time.perf_counter()
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def advance(self, nbytes: int = 0, items: int = 1) -> None:
        self.items += items
        self.bytes += nbytes
        now = time.perf_counter()
        if self.enabled and (self.tty or now - self._last >= 5.0):
            self._draw("\r" if self.tty else "")
            self._last = now

    def _draw(self, prefix: str, end: str = "") -> None:
        size = (f" ({self.bytes / 1e9:.2f}/{self.total_bytes / 1e9:.2f} GB)"
                if self.total_bytes else "")
        line = (f"{self.label}: {self.items}/{self.total_items}{size} "
                f"{time.perf_counter() - self.start:.1f} s")
        self.stream.write(prefix + line + (end if end else ("" if self.tty else "\n")))
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._draw("\r" if self.tty else "", end="\n")
