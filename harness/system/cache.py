"""The harness's cache folder: synthetic checkpoints, reference outputs, content digests, and
the locks that keep two runs from writing (or cleaning up) the same entry at once.

An entry is built in a hidden staging folder `.<name>-*` beside it and renamed into place
when whole. Its writer holds `<cache>/locks/<name>.lock` the whole time: a run that holds the
lock and finds staging folders knows their writer is dead (the kernel drops a dead process's
lock) and removes them; a second run waits for a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

ENV = "GEMMA3_HARNESS_CACHE"


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """`cache` (the --cache option) if given, else $GEMMA3_HARNESS_CACHE, else
    ~/.cache/gemma3-harness."""
    if cache:
        return Path(cache).expanduser()
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gemma3-harness"


@contextlib.contextmanager
def writer_lock(final: Path, progress: Callable[[str], None] | None = None) -> Iterator[None]:
    """An exclusive lock on `<cache>/locks/<final.name>.lock` (final: `<cache>/<kind>/<name>`),
    waited for if another run holds it. The file stays: deleting a lock file races its users."""
    locks = final.parent.parent / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{final.name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress(f"waiting for another run that is writing {final.name}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def discard_partials(final: Path) -> list[Path]:
    """Removes the hidden staging folders `.<final.name>-*` beside `final` (what a killed writer
    leaves). Call it holding final's writer_lock, so no live writer owns them."""
    stale = sorted(p for p in final.parent.glob(f".{final.name}-*") if p.is_dir())
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale
