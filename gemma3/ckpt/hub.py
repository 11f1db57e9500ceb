"""Resolving a checkpoint argument: a local directory, or a hub id fetched with huggingface_hub."""

from __future__ import annotations

import re
from pathlib import Path

from gemma3.ckpt.safetensors import CheckpointError, exists

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# What a Gemma 3 repo holds that we use: configs, tokenizer, weights.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "tokenizer.model"]


def resolve_checkpoint(path_or_hub_id, *, revision: str | None = None) -> Path:
    """A local directory as it is; otherwise a hub id downloaded (or found in the hub cache)."""
    path = Path(path_or_hub_id).expanduser()
    if exists(path) and path.is_dir():  # exists: a symlink loop is an error naming it
        return path
    text = str(path_or_hub_id)
    if path.exists() or not HUB_ID.match(text):
        raise CheckpointError(f"{text!r} is not a checkpoint directory, nor a hub id like "
                              "'google/gemma-3-1b-it'")
    return download(text, revision)


def download(repo_id: str, revision: str | None = None) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a declared dependency
        raise CheckpointError("huggingface_hub is needed to fetch hub ids; "
                              "pip install huggingface_hub, or pass a local directory") from None
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=ALLOW_PATTERNS))
    except Exception as e:  # noqa: BLE001 - network, auth (gated repos), unknown repo or revision
        raise CheckpointError(
            f"could not fetch {repo_id!r} from the Hugging Face hub ({type(e).__name__}: {e}). "
            "Gemma repos are gated: accept the license on huggingface.co, then log in "
            "(`hf auth login`) or set HF_TOKEN; offline, pass a local checkpoint directory."
        ) from None


def revision_of(directory: Path) -> str | None:
    """The commit hash of a hub snapshot directory (…/snapshots/<hash>), else None."""
    parts = directory.resolve().parts
    if len(parts) >= 2 and parts[-2] == "snapshots" and re.fullmatch(r"[0-9a-f]{40}", parts[-1]):
        return parts[-1]
    return None
