"""The hash of the model code that decides a result's numbers (provenance.project.code_sha256):
a result whose hash differs from the current code's is marked stale in the matrix.

Hashed: every `*.py` file, at any depth, under the rooms of gemma3/ that compute what the checks
measure (NUMERIC_ROOMS: the configs, the network, the checkpoint readers and loader, generation,
and the runtime choices that change programs: CPU tuning, sharding). Not hashed: the command
line, the prompt-side inputs (tokenizer, chat template, image preprocessing: the checks feed
token ids and pixel arrays), and the package's __init__/__main__, so editing a help text does
not mark the whole matrix stale.

Algorithm: take those files' paths relative to the repository root in POSIX form
(`gemma3/nn/model.py`), sort them by code point (Python's `sorted`), then feed the sha256, for
each path in order, the path's UTF-8 bytes, one NUL byte, the file's raw bytes, one NUL byte.
No git data is used, so shallow clones and unpacked archives give the same hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = "gemma3"
NUMERIC_ROOMS = ("config", "nn", "ckpt", "generation", "runtime")


def hashed_files(root: Path) -> dict[str, Path]:
    """{relative POSIX path: path} of every file the hash covers."""
    root = Path(root)
    package = root / PACKAGE
    if not package.is_dir():
        raise FileNotFoundError(
            f"no {PACKAGE}/ directory under {root}; run from the repository root or pass --root")
    return {p.relative_to(root).as_posix(): p
            for room in NUMERIC_ROOMS for p in (package / room).rglob("*.py") if p.is_file()}


def code_sha256(root: Path) -> str:
    """sha256 hex digest of the numeric rooms of `<root>/gemma3/` (see the module docstring)."""
    files = hashed_files(root)
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(files[relative].read_bytes() + b"\0")
    return digest.hexdigest()
