"""Hash of the model sources (`gemma3/**/*.py`), to tell whether a result ran on other code."""

import hashlib
from pathlib import Path

PACKAGE = "gemma3"


def code_sha256(root: Path) -> str:
    """sha256 hex digest of the `gemma3/` Python sources under the repository root `root`.

    Algorithm (the harness computes the same value into provenance.project.code_sha256):
    take every regular file under `<root>/gemma3/` whose name ends in `.py`, at any depth;
    write each one's path relative to `root` in POSIX form (`gemma3/model.py`); sort those
    path strings by Unicode code point (Python's `sorted`); then, for each path in that order,
    feed the sha256 the path's UTF-8 bytes, one NUL byte, the file's raw bytes, one NUL byte.
    No git data is used, so shallow clones and unpacked archives give the same hash.
    """
    root = Path(root)
    package = root / PACKAGE
    if not package.is_dir():
        raise FileNotFoundError(
            f"no {PACKAGE}/ directory under {root}; run from the repository root or pass --root"
        )
    files = {p.relative_to(root).as_posix(): p for p in package.rglob("*.py") if p.is_file()}
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(files[relative].read_bytes() + b"\0")
    return digest.hexdigest()
