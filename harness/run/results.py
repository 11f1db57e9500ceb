"""The result file: pytest-json-report's tests of every model process, merged, plus the
provenance block (docs/result-format.md). Rewritten atomically after each model, so an
interrupted run keeps what it finished.

Nothing private leaves the machine: the home directory becomes `~` in every string, anything
shaped like an access token is redacted, `root` is ".", and pytest-json-report's environment
block (which lists environment details) is not copied.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from contract.checks import FAILED, OUTCOMES
from contract.code_hash import code_sha256
from contract.evidence import kind_of_source
from contract.results import SCHEMA_VERSION, file_name

_TOKEN = re.compile(r"(?:hf_|gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}")
MAX_LONGREPR = 20_000  # characters kept of a failure's text (the schema allows 100,000)
TEST_KEYS = ("nodeid", "lineno", "keywords", "outcome", "setup", "call", "teardown", "metadata")


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def project(root: Path) -> dict:
    """provenance.project: {"commit": 40-hex or None (not a git checkout), "dirty": bool,
    "code_sha256": contract.code_hash of the model code}."""
    head = (_git(root, "rev-parse", "HEAD") or "").strip()
    commit = head if re.fullmatch(r"[0-9a-f]{40}", head) else None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status and status.strip()),
            "code_sha256": code_sha256(root)}


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def scrub(value, home: str | None = None):
    """Every string with the home directory replaced by `~` and token-like text redacted."""
    home = home if home is not None else str(Path.home())
    if isinstance(value, str):
        if home and home != "/":
            value = value.replace(home, "~")
        return _TOKEN.sub("[redacted]", value)
    if isinstance(value, dict):
        return {scrub(k, home): scrub(v, home) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, home) for v in value]
    return value


def clean_test(test: dict) -> dict:
    """The keys the schema knows, with failure texts cut to MAX_LONGREPR characters."""
    out = {k: test[k] for k in TEST_KEYS if k in test}
    for stage in ("setup", "call", "teardown"):
        if stage in out:
            kept = {k: out[stage][k] for k in ("outcome", "duration", "longrepr")
                    if k in out[stage]}
            if isinstance(kept.get("longrepr"), str):
                kept["longrepr"] = kept["longrepr"][-MAX_LONGREPR:]
            out[stage] = kept
    return out


def summary(tests: list[dict], deselected: int = 0) -> dict:
    counts = Counter(t["outcome"] for t in tests)
    out = {"collected": len(tests) + deselected, "total": len(tests)}
    out.update({o: counts[o] for o in OUTCOMES if counts[o]})
    if deselected:
        out["deselected"] = deselected
    return out


class ResultFile:
    """Accumulates models and tests; `write` rewrites the whole file atomically."""

    def __init__(self, directory: Path, provenance: dict, started: float | None = None):
        self.directory = Path(directory)
        self.started = time.time() if started is None else started
        self.provenance = {**provenance, "schema_version": SCHEMA_VERSION, "models": {}}
        self.tests: list[dict] = []
        self.deselected = 0
        self.path = self.directory / file_name(self.provenance)

    def add_model(self, model_id: str, entry: dict, tests: list[dict], deselected: int = 0):
        self.provenance["models"][model_id] = entry
        self.tests.extend(clean_test(t) for t in tests)
        self.deselected += deselected

    def document(self) -> dict:
        failing = any(t["outcome"] in FAILED for t in self.tests) or any(
            m["status"] == "failed" for m in self.provenance["models"].values())
        return scrub({
            "created": self.started, "duration": max(0.0, time.time() - self.started),
            "exitcode": 1 if failing else 0, "root": ".",
            "summary": summary(self.tests, self.deselected), "tests": self.tests,
            "provenance": self.provenance,
        })

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.document(), indent=1, allow_nan=False)
        fd, tmp = tempfile.mkstemp(prefix=".result-", suffix=".tmp", dir=self.directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, self.path)
        return self.path


def model_entry(checkpoint: str, status: str, reason: str | None, predicted: int | None,
                available: int | None, dtypes: list[str], quantization: dict | None = None,
                reference_placement: dict[str, str] | None = None) -> dict:
    """One provenance.models entry; the evidence kind follows from the checkpoint's source form
    (a `gguf:` source is real_quantized and carries its quantization block).
    reference_placement: dtype -> where its reference ran (`cuda:0`, `host RAM`, ...)."""
    return {"checkpoint": checkpoint, "evidence": kind_of_source(checkpoint),
            "quantization": quantization, "status": status,
            "reason": None if reason is None else reason[:200],
            "predicted_bytes": predicted, "available_bytes": available, "dtypes": dtypes,
            "reference_placement": reference_placement or {}}
