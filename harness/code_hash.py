"""provenance.project: the git commit, the dirty flag and the hash of the gemma3/ sources.

The hash is docs/result-format.md's algorithm, written again here because the harness does not
import matrix/ (tests/test_harness_results.py checks that both give the same value).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

PACKAGE = "gemma3"


def code_sha256(root: Path) -> str:
    """sha256 over (relative POSIX path, NUL, raw bytes, NUL) of every gemma3/**/*.py, sorted."""
    root = Path(root)
    files = {p.relative_to(root).as_posix(): p
             for p in (root / PACKAGE).rglob("*.py") if p.is_file()}
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(files[relative].read_bytes() + b"\0")
    return digest.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def project(root: Path) -> dict:
    """{"commit": 40-hex or None (not a git checkout), "dirty": bool, "code_sha256": hex}."""
    head = (_git(root, "rev-parse", "HEAD") or "").strip()
    commit = head if re.fullmatch(r"[0-9a-f]{40}", head) else None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status and status.strip()),
            "code_sha256": code_sha256(root)}
