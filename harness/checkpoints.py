"""Which weights a model runs on, and how the result file names them:

- `--checkpoint DIR`: real weights in a local directory -> `local:<sha256>` over the index file
  (if any) and every safetensors header, so the same files give the same id anywhere; a hub
  snapshot directory (…/snapshots/<40 hex>) -> `hub:<repo>@<revision>`;
- `--checkpoint org/name`: fetched with huggingface_hub -> `hub:org/name@<revision>`;
- nothing: a synthetic checkpoint in the hub layout (harness/synthetic.py) -> `synthetic:<seed>`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from pathlib import Path

from gemma3.checkpoint import shard_files
from gemma3.hub import HUB_ID, download, revision_of
from harness import synthetic
from harness.registry import INDEX_FILE, ModelSpec


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    path: Path
    source: str  # synthetic:<seed> | hub:<repo>@<rev> | local:<sha256>
    key: str  # what the reference cache is keyed by (more specific than source for synthetic)

    @property
    def synthetic(self) -> bool:
        return self.source.startswith("synthetic:")


def local_digest(directory: Path) -> str:
    """sha256 of the index file (if any) and each shard's header, in file-name order."""
    h = hashlib.sha256()
    index = directory / INDEX_FILE
    if index.exists():
        h.update(index.read_bytes())
    for path in shard_files(directory):
        with path.open("rb") as f:
            head = f.read(8)
            (length,) = struct.unpack("<Q", head)
            h.update(path.name.encode() + b"\0" + head + f.read(length))
    return h.hexdigest()


def resolve(spec: ModelSpec, given: str | None, seed: int, cache=None,
            progress=None) -> Checkpoint:
    if given is None:
        path = synthetic.ensure_checkpoint(spec, seed, cache, progress)
        return Checkpoint(path, f"synthetic:{seed}",
                          f"synthetic:{spec.id}:{seed}:w{synthetic.WRITER_VERSION}")
    path = Path(given).expanduser()
    if path.is_dir():
        revision, repo = revision_of(path), _repo_of_snapshot(path)
        if revision and repo:
            source = f"hub:{repo}@{revision}"
        else:
            source = f"local:{local_digest(path)}"
        return Checkpoint(path, source, source)
    if not HUB_ID.match(given):
        raise ValueError(f"--checkpoint {given!r} is neither a directory nor a hub id like "
                         f"{spec.hub_repo!r}")
    path = download(given)
    revision = revision_of(path)
    if revision is None:
        raise ValueError(f"huggingface_hub returned {path}, which is not a snapshot "
                         "directory; cannot record the revision")
    source = f"hub:{given}@{revision}"
    return Checkpoint(path, source, source)


def _repo_of_snapshot(path: Path) -> str | None:
    """…/models--org--name/snapshots/<rev> -> org/name (the hub cache layout)."""
    parts = path.resolve().parts
    if len(parts) >= 3 and parts[-3].startswith("models--"):
        return parts[-3][len("models--"):].replace("--", "/", 1)
    return None


def describe(spec: ModelSpec, given: str | None, seed: int) -> str:
    """The source string of a model that will not run (planner refusal), without writing a
    synthetic checkpoint or downloading weights."""
    if given is None:
        return f"synthetic:{seed}"
    path = Path(given).expanduser()
    if path.is_dir():
        revision, repo = revision_of(path), _repo_of_snapshot(path)
        return f"hub:{repo}@{revision}" if revision and repo else f"local:{local_digest(path)}"
    from harness.preflight import hub_config_dir

    # The snapshot the pre-check found (cached, or its config.json fetched): no weights needed.
    return f"hub:{given}@{revision_of(hub_config_dir(given))}"
