"""Which weights a model runs on, and how the result file names them:

- `--checkpoint DIR`: real weights in a local directory -> `local:<sha256>` over the index file
  (if any) and every safetensors file's whole content, so the same weights give the same id
  anywhere and weights changed in place get a new one; a hub snapshot directory
  (…/snapshots/<40 hex>) -> `hub:<repo>@<revision>`;
- `--checkpoint model.gguf` (or a directory holding one .gguf and no safetensors): real weights,
  quantized -> `gguf:<sha256 of the file>`, with the file's tensor-type mix;
- `--checkpoint org/name`: fetched with huggingface_hub -> `hub:org/name@<revision>`;
- nothing: a synthetic checkpoint in the hub layout (synthetic.py) -> `synthetic:<seed>`.

Each source form is one evidence kind (contract/evidence.py); the reference cache is keyed by
the source, so new content never reuses an old reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from contract.evidence import kind_of_source
from gemma3.ckpt.hub import HUB_ID, download, revision_of
from gemma3.ckpt.safetensors import shard_files
from harness.checkpoints import synthetic
from harness.checkpoints.digests import file_sha256
from harness.checkpoints.gguf_facts import check_model, facts, quantization
from harness.checkpoints.hub import hub_config_dir
from harness.checkpoints.registry import INDEX_FILE, ModelSpec


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    path: Path | None  # None: described only (the planner refused the model)
    source: str  # synthetic:<seed> | hub:<repo>@<rev> | local:<sha256> | gguf:<sha256>
    key: str  # what the reference cache is keyed by (more specific than source for synthetic)
    quantization: dict | None = None  # gguf: {"format", "file_sha256", "tensor_types"}

    @property
    def evidence(self) -> str:
        return kind_of_source(self.source)

    @property
    def synthetic(self) -> bool:
        return self.evidence == "synthetic"

    @property
    def real_weights(self) -> bool:
        """Real (released or quantized) weights: the real-text checks mean something."""
        return not self.synthetic


def local_digest(directory: Path, cache=None) -> str:
    """sha256 over the index file (if any) and each shard's name and whole content, in file-name
    order; a shard's content digest is cached by (path, size, mtime), see digests.py."""
    h = hashlib.sha256()
    index = directory / INDEX_FILE
    if index.exists():
        h.update(index.read_bytes())
    for path in shard_files(directory):
        h.update(path.name.encode() + b"\0" + file_sha256(path, cache).encode() + b"\0")
    return h.hexdigest()


def _gguf_checkpoint(spec: ModelSpec, path: Path, cache) -> Checkpoint:
    found = facts(path, cache)
    check_model(spec, path, found)
    digest = file_sha256(path, cache)
    source = f"gguf:{digest}"
    return Checkpoint(path, source, source, quantization(found, digest))


def resolve(spec: ModelSpec, given: str | None, seed: int, cache=None,
            progress=None) -> Checkpoint:
    if given is None:
        path = synthetic.ensure_checkpoint(spec, seed, cache, progress)
        return Checkpoint(path, f"synthetic:{seed}",
                          f"synthetic:{spec.id}:{seed}:w{synthetic.WRITER_VERSION}")
    path = Path(given).expanduser()
    local = _local(spec, path, cache)
    if local is not None:
        return local
    if not HUB_ID.match(given):
        raise ValueError(f"--checkpoint {given!r} is neither a directory, a .gguf file nor a hub "
                         f"id like {spec.hub_repo!r}")
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


def _local(spec: ModelSpec, path: Path, cache) -> Checkpoint | None:
    """A checkpoint on this machine (GGUF file, directory, hub snapshot), or None."""
    from gemma3.ckpt.gguf.file import find_gguf  # here: it imports jax, a synthetic run needs none

    gguf = find_gguf(path)
    if gguf is not None:
        return _gguf_checkpoint(spec, gguf, cache)
    if not path.is_dir():
        return None
    revision, repo = revision_of(path), _repo_of_snapshot(path)
    source = f"hub:{repo}@{revision}" if revision and repo else f"local:{local_digest(path, cache)}"
    return Checkpoint(path, source, source)


def describe(spec: ModelSpec, given: str | None, seed: int, cache=None) -> Checkpoint:
    """The weights of a model that will not run (planner refusal), without writing a synthetic
    checkpoint or downloading weights."""
    if given is None:
        return Checkpoint(None, f"synthetic:{seed}", f"synthetic:{seed}")
    local = _local(spec, Path(given).expanduser(), cache)
    if local is not None:
        return local
    # The snapshot the pre-check found (cached, or its config.json fetched): no weights needed.
    source = f"hub:{given}@{revision_of(hub_config_dir(given))}"
    return Checkpoint(None, source, source)
