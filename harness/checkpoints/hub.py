"""A hub id's config.json without its weights: what the pre-check and a refused model's record
need, so neither a wrong id nor a missing network costs a weights download."""

from __future__ import annotations

import json
from pathlib import Path

from harness.checkpoints.registry import INDEX_FILE, SINGLE_FILE


def hub_config_dir(repo: str) -> Path:
    """The snapshot folder holding `repo`'s config.json: the cached one when the snapshot has
    its weights, else fetched (config.json only). No network and no cached snapshot: a
    ValueError saying so and what to do."""
    from huggingface_hub import constants, hf_hub_download

    try:
        cached = Path(hf_hub_download(repo, "config.json", local_files_only=True)).parent
    except Exception:  # noqa: BLE001 - not in the cache (any of huggingface_hub's errors)
        cached = None
    if cached is not None and _has_weights(cached):
        return cached
    try:
        return Path(hf_hub_download(repo, "config.json", etag_timeout=10)).parent
    except Exception as e:  # noqa: BLE001 - offline, unreachable, gated, unknown repo
        state = "has no complete snapshot" if cached is None else "holds only part of it"
        raise ValueError(f"--checkpoint {repo}: the local hub cache ({constants.HF_HUB_CACHE}) "
                      f"{state}, and fetching it failed ({type(e).__name__}: {_first_line(e)}); "
                      f"download it where there is network (`hf download {repo}`) or pass a "
                      "local checkpoint directory") from None


def _has_weights(directory: Path) -> bool:
    index = directory / INDEX_FILE
    if index.exists():
        shards = set(json.loads(index.read_text("utf-8")).get("weight_map", {}).values())
        return bool(shards) and all((directory / s).exists() for s in shards)
    return (directory / SINGLE_FILE).exists()


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
