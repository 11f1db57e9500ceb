"""Where compiled programs are kept between processes, on by default for the CLI, the harness
and the benchmark: a second process with the same model and shape bucket loads its programs
from gemma3.runtime.program_store instead of tracing and compiling them again.

The folder is $GEMMA3_COMPILE_CACHE if set ("off" disables it), else
<user cache dir>/gemma3/programs ($XDG_CACHE_HOME or ~/.cache). JAX's own persistent cache
stays off: a program it gives back cannot be stored whole (see program_store), and the store
holds every program that takes long to compile.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "GEMMA3_COMPILE_CACHE"
OFF = ("off", "0", "none")
_enabled: Path | None = None  # the folder enable() turned on in this process


def cache_dir() -> Path | None:
    """The folder the cache uses, or None when $GEMMA3_COMPILE_CACHE turns it off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gemma3" / "programs"


def enable(directory: str | os.PathLike | None = None) -> Path | None:
    """Turns the store on in this process (directory, else cache_dir()); returns the folder."""
    global _enabled
    path = Path(directory) if directory is not None else cache_dir()
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
    _enabled = path
    return path


def programs_dir() -> Path | None:
    """The folder enable() turned on; None before, or when the cache is off."""
    return _enabled
