"""The reference outputs on disk: one folder per (model, dtype, weights, prompts, library
versions) under <cache>/reference/, written whole or not at all (a staging folder renamed into
place), read by the checks. What each file holds: harness/reference/transformers_run.py."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

from harness.parity import realtext
from harness.parity.prompts import Prompts
from harness.system.cache import cache_root

REFERENCE_VERSION = 2  # 2: real-text outputs, GGUF checkpoints
DONE = "meta.json"


def library_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def reference_dir(cache, model_id: str, dtype: str, source: str, prompts: Prompts) -> Path:
    # `source` names the weights by content (harness/checkpoints/resolve.py): new weights, new
    # outputs.
    key = json.dumps([REFERENCE_VERSION, source, prompts.digest(), realtext.digest(), dtype,
                      library_version("torch"), library_version("transformers")])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root(cache) / "reference" / f"{model_id}-{dtype}-{digest}"


def load_outputs(directory: Path) -> dict[str, np.ndarray]:
    if not (directory / DONE).exists():
        raise FileNotFoundError(f"no reference outputs in {directory}; run "
                                "`python -m harness.reference` (python -m harness does it)")
    return {p.stem: np.load(p) for p in directory.glob("*.npy")}


def load_meta(directory: Path) -> dict:
    return json.loads((directory / DONE).read_text("utf-8"))


def is_real(source: str) -> bool:
    """Real (released or quantized) weights, from the cache key's source form."""
    return not source.startswith("synthetic:")


def save_outputs(directory: Path, outputs: dict[str, np.ndarray], meta: dict) -> None:
    """Writes into a staging directory and renames it into place: never half a result."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    for name, array in outputs.items():
        np.save(staging / f"{name}.npy", array)
    (staging / DONE).write_text(json.dumps(meta, indent=2))
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
