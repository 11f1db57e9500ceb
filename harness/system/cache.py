"""The harness's cache folder: synthetic checkpoints, reference outputs, content digests, locks."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "GEMMA3_HARNESS_CACHE"


def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """`cache` (the --cache option) if given, else $GEMMA3_HARNESS_CACHE, else
    ~/.cache/gemma3-harness."""
    if cache:
        return Path(cache).expanduser()
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gemma3-harness"
