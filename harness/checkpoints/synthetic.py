"""Synthetic checkpoints: the hub release's exact layout filled with seeded random values.

Layout: the hub's config.json (harness/data/hub-configs, eos per variant), generation_config.json,
the same tensor names, shapes, bf16 dtype and shard files, and for sharded sizes the index with
metadata.total_size (harness/checkpoints/layout.py). Every tensor is streamed to disk in chunks,
each drawn from its own numpy Generator seeded by (seed, crc32(name)), so files never hold the
model in memory and the values do not depend on shard order. Checkpoints are cached under
`$GEMMA3_HARNESS_CACHE` (default ~/.cache/gemma3-harness) keyed by model id, seed and
WRITER_VERSION, built in a hidden staging directory (`.<name>-partial-*`) and renamed into place
when complete, under the cache's writer lock (harness/system/cache.py), so a second run waits
for a live writer and removes only what a dead one left.

Why the predictions are confident and context-dependent (the idea of tests/tiny.py):
- linear layers have unit gain (std 1/sqrt(fan_in)); pre-norm weights are small offsets of 1;
- the post-sublayer norms have gain ~POST_NORM_GAIN, so each layer's contribution outweighs the
  token embedding and predictions depend on the context;
- the embedding has std EMBED_RMS/sqrt(D): after the sqrt(D) input scale each coordinate has
  RMS EMBED_RMS (0.3). With tied embeddings a token's own input row also scores it as output;
  at RMS 1 that self-boost made greedy decoding lock into repeating one token (1-4 distinct
  tokens in 48), at 0.3 it gives 30+ distinct tokens in 48, so the decode check means something;
- the final norm's gain is ~CONFIDENCE/EMBED_RMS, so the logits have std ~CONFIDENCE (8).
Measured on the 270m (CPU, transformers fp32 vs bf16, 64 positions): median top-1 margin
1.0-1.2 logits, 6-9x the median change bf16 rounding makes to it (0.16-0.2). The few positions
with margins under the bf16 noise are near-ties: the checks detect them from the reference's
margin and handle them explicitly (harness/parity/greedy.py), they are not hidden. Heavier-tailed
embeddings (per-token log-normal scales) raised the margin/noise ratio only to 11-17 and made
decoding repeat one token, so they are not used. The logits check records the median margin.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import ml_dtypes
import numpy as np

from gemma3.config import BOS_ID, END_OF_TURN_ID, EOS_ID, PAD_ID, Gemma3Config
from harness.checkpoints import layout
from harness.checkpoints.registry import INDEX_FILE, ModelSpec
from harness.checkpoints.safetensors_writer import chunk_sizes, write_file
from harness.system.cache import cache_root, discard_partials, writer_lock
from harness.system.processes import deferred_signals

WRITER_VERSION = 3  # bump when values, names or files change: the cache key includes it
CONFIDENCE = 8.0
POST_NORM_GAIN = 5.0
EMBED_RMS = 0.3
CHUNK = 1 << 22  # values per generated chunk (16 MiB as float32)
HUB_CONFIGS = Path(__file__).parents[1] / "data" / "hub-configs"
DONE = ".complete"
BF16 = np.dtype(ml_dtypes.bfloat16)


def hub_config(spec: ModelSpec) -> dict:
    """The hub's config.json for this model (the -it files carry eos [1, 106])."""
    config = json.loads((HUB_CONFIGS / f"gemma-3-{spec.size}.json").read_text("utf-8"))
    config["eos_token_id"] = [EOS_ID, END_OF_TURN_ID] if spec.variant == "it" else EOS_ID
    return config


def generation_config(spec: ModelSpec) -> dict:
    """As the hub ships it, with the config's eos ids so both sides stop alike;
    the harness always passes do_sample=False itself."""
    return {"bos_token_id": BOS_ID, "pad_token_id": PAD_ID, "eos_token_id": hub_config(spec)["eos_token_id"],
            "cache_implementation": "hybrid", "do_sample": True, "top_k": 64, "top_p": 0.95,
            "transformers_version": "4.50.0.dev0"}


def value_law(name: str, shape: tuple[int, ...]) -> tuple[float, float]:
    """(mean, std) of the normal each tensor is drawn from; see the module docstring."""
    if name.endswith("embed_tokens.weight"):
        return 0.0, EMBED_RMS / math.sqrt(shape[-1])
    if name.endswith("model.norm.weight"):  # the final norm (text decoder)
        return CONFIDENCE / EMBED_RMS - 1.0, 0.5
    if ".post_attention_layernorm." in name or ".post_feedforward_layernorm." in name:
        return POST_NORM_GAIN - 1.0, 0.5
    if name.startswith("vision_tower.") and "norm" in name:  # LayerNorm: weight ~1, bias ~0
        return (1.0, 0.1) if name.endswith(".weight") else (0.0, 0.1)
    if "norm" in name:  # Gemma RMSNorm stores offsets from 1
        return 0.0, 0.5
    if name.endswith(".bias"):
        return 0.0, 0.1
    if name.endswith("mm_input_projection_weight"):  # used as x @ W: fan-in is the first axis
        return 0.0, 1.0 / math.sqrt(shape[0])
    if name.endswith("position_embedding.weight"):
        return 0.0, 0.5
    return 0.0, 1.0 / math.sqrt(math.prod(shape[1:]))  # unit gain; conv fan-in is C*kh*kw


def tensor_chunks(seed: int, model_id: str, t: layout.TensorSpec) -> Iterator[np.ndarray]:
    """The tensor's values in row-major order, as bf16 chunks. Each model id gets its own draw
    (a -pt and an -it checkpoint differ on the hub too)."""
    rng = np.random.default_rng([seed, zlib.crc32(model_id.encode()), zlib.crc32(t.name.encode())])
    mean, std = value_law(t.name, t.shape)
    for n in chunk_sizes(math.prod(t.shape), CHUNK):
        values = rng.standard_normal(n, dtype=np.float32) * np.float32(std) + np.float32(mean)
        yield values.astype(BF16)


def checkpoint_dir(spec: ModelSpec, seed: int, cache: str | os.PathLike | None = None) -> Path:
    return cache_root(cache) / "checkpoints" / f"{spec.id}-seed{seed}-w{WRITER_VERSION}"


def write_checkpoint(spec: ModelSpec, directory: Path, seed: int, progress=None, *,
                     config: dict | None = None) -> None:
    """Writes the whole checkpoint into `directory` (which must exist). `config` replaces the
    hub config.json (tests use small ones); names, shapes and shards follow from it."""
    config = hub_config(spec) if config is None else config
    tensors = layout.plan(spec, Gemma3Config.from_hf_config(config))
    _write_json(directory / "config.json", config)
    _write_json(directory / "generation_config.json", generation_config(spec))
    if spec.num_shards > 1:
        index = {"metadata": {"total_size": layout.total_size(tensors)},
                 "weight_map": layout.weight_map(tensors)}
        _write_json(directory / INDEX_FILE, index)
    for shard in spec.shard_names:
        if progress:
            progress(f"writing {shard}")
        write_file(directory / shard, [t for t in tensors if t.shard == shard],
                   lambda t: tensor_chunks(seed, spec.id, t))


def ensure_checkpoint(spec: ModelSpec, seed: int, cache: str | os.PathLike | None = None,
                      progress=None) -> Path:
    """The cached synthetic checkpoint, written first if it is not there yet."""
    final = checkpoint_dir(spec, seed, cache)
    if (final / DONE).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(final, progress):
        if (final / DONE).exists():  # another run wrote it while this one waited
            return final
        discard_partials(final)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-partial-", dir=final.parent))
        try:
            write_checkpoint(spec, staging, seed, progress)
            with deferred_signals():
                (staging / DONE).write_text("")
                if final.exists():  # an incomplete checkpoint of an older writer
                    shutil.rmtree(final)
                staging.rename(final)
        except BaseException:  # Interrupted, Ctrl-C, disk full: never leave half a checkpoint
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return final


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
