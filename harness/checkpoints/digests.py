"""Content digests (and other facts) of weight files, cached by (resolved path, size, mtime_ns)
in the harness cache, so a re-run does not re-read gigabytes while a file changed in place (new
size or mtime) is read again.

    <cache>/digests/<sha256 of the key and fact name>.json   {"path", "size", "mtime_ns", <fact>}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from harness.system.cache import cache_root

CHUNK_BYTES = 16 * 2**20


def file_sha256(path: Path, cache=None) -> str:
    """sha256 of the file's bytes, from the cache when the path, size and mtime are unchanged."""
    return cached_fact(path, cache, "sha256", _hash)


def cached_fact(path: Path, cache, name: str, compute):
    """compute(resolved path) (JSON-able), cached under `name` by path, size and mtime_ns."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    entry = _entry_path(cache, key, name)
    found = _read(entry)
    if found is not None and name in found and all(found.get(k) == v for k, v in key.items()):
        return found[name]
    value = compute(resolved)
    _write(entry, {**key, name: value})
    return value


def _entry_path(cache, key: dict, fact: str) -> Path:
    name = hashlib.sha256(json.dumps([key, fact], sort_keys=True).encode()).hexdigest()[:32]
    return cache_root(cache) / "digests" / f"{name}.json"


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def _read(entry: Path) -> dict | None:
    try:
        data = json.loads(entry.read_text("utf-8"))
    except (OSError, ValueError):
        return None  # absent or damaged: hash again
    return data if isinstance(data, dict) else None


def _write(entry: Path, data: dict) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".digest-", dir=entry.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, entry)  # never half an entry, even with two runs at once
