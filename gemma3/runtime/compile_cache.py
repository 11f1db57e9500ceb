"""JAX's persistent compilation cache, on by default for the CLI, the harness and the benchmark:
a second process with the same model and shape bucket loads its compiled programs from disk
instead of compiling them again.

The folder is $GEMMA3_COMPILE_CACHE if set ("off" disables the cache), else
<user cache dir>/gemma3/jax-compile ($XDG_CACHE_HOME or ~/.cache).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

ENV = "GEMMA3_COMPILE_CACHE"
OFF = ("off", "0", "none")


def cache_dir() -> Path | None:
    """The folder the cache uses, or None when $GEMMA3_COMPILE_CACHE turns it off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gemma3" / "jax-compile"


def enable(directory: str | os.PathLike | None = None) -> Path | None:
    """Turns the persistent cache on (directory, else cache_dir()); returns the folder used.
    Call it before the first compilation of the process: JAX reads the setting once."""
    path = Path(directory) if directory is not None else cache_dir()
    if path is None:
        return None
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # Defaults skip programs that compile in under 1 s and let the file system raise the
    # minimum entry size; every program of ours is worth keeping.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path
