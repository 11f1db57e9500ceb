"""GGUF metadata (llama.cpp's `gemma3.*` keys) -> Gemma3Config.

A GGUF states the decoder's shapes, the context length, the sliding window, the global RoPE
theta and the norm epsilon. It does not state query_pre_attn_scalar,
the sliding-window pattern, the local RoPE theta, RoPE scaling or the eos ids (newer llama.cpp
files may state the pattern, the local theta and the scaling; then the file's values win):
those come from the released size whose shapes match (Gemma3Config.for_size), or from a `base`
config the caller gives (tests use tiny ones). A 4b+ GGUF holds the text decoder only
(llama.cpp puts the vision tower in a separate mmproj file), so the config has no vision tower.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from gemma3.ckpt.errors import CheckpointError
from gemma3.ckpt.gguf.file import open_gguf
from gemma3.config import GLOBAL, SLIDING, Gemma3Config, RopeConfig, layer_types_from_pattern

ARCHITECTURE = "gemma3"
SIZES = ("270m", "1b", "4b", "12b", "27b")
# GGUF key (after "gemma3.") -> the TextConfig field it states; these pick the released size.
SHAPE_KEYS = {
    "embedding_length": "hidden_size",
    "feed_forward_length": "intermediate_size",
    "block_count": "num_hidden_layers",
    "attention.head_count": "num_attention_heads",
    "attention.head_count_kv": "num_key_value_heads",
    "attention.key_length": "head_dim",
}
SUPPORTED_ROPE_SCALING = ("none", "linear")


class GGUFConfigError(CheckpointError):
    """GGUF metadata that does not describe a Gemma 3 model this library can run."""


def read_config(path: str | Path, base: Gemma3Config | None = None) -> Gemma3Config:
    """The Gemma3Config of a GGUF file (base: what the metadata is checked against and
    completed from, for sizes that were never released)."""
    return config_from_metadata(open_gguf(path).metadata, str(path), base)


def config_from_metadata(meta: dict[str, Any], source: str,
                         base: Gemma3Config | None = None) -> Gemma3Config:
    """The config a GGUF's metadata describes. base: the config that supplies what GGUF does
    not store (default: the released size whose shapes match; an unknown size is an error)."""
    arch = meta.get("general.architecture")
    if arch != ARCHITECTURE:
        raise GGUFConfigError(
            f"{source} has general.architecture {arch!r}; expected {ARCHITECTURE!r}. Only Gemma 3 "
            "GGUFs load here (gemma3n, gemma2, llama, ... are other architectures)")
    shape = {field: _int(meta, f"{ARCHITECTURE}.{key}", source)
             for key, field in SHAPE_KEYS.items()}
    base = _released_size(shape, source) if base is None else _check_base(base, shape, source)
    value_length = meta.get(f"{ARCHITECTURE}.attention.value_length", shape["head_dim"])
    if int(value_length) != shape["head_dim"]:
        raise GGUFConfigError(f"{source} has {ARCHITECTURE}.attention.value_length {value_length}"
                              f" != key_length {shape['head_dim']}; Gemma 3 uses one head_dim")
    text = base.text
    stated: dict[str, Any] = {  # TextConfig fields of several types, passed by name
        "vocab_size": _vocab_size(meta, source, text.vocab_size),
        "max_position_embeddings": int(meta.get(f"{ARCHITECTURE}.context_length",
                                                text.max_position_embeddings)),
        "sliding_window": int(meta.get(f"{ARCHITECTURE}.attention.sliding_window",
                                       text.sliding_window)),
        "rms_norm_eps": _eps(meta, text.rms_norm_eps),
        "rope_global": _rope_global(meta, text.rope_global, source),
        # Newer llama.cpp files state the local theta; older ones leave it to the release's.
        "rope_local": RopeConfig(float(meta.get(f"{ARCHITECTURE}.rope.freq_base_swa",
                                                text.rope_local.theta)),
                                 text.rope_local.linear_factor),
        "layer_types": _layer_types(meta, text.layer_types, source),
        "final_logit_softcapping": _softcap(meta, text.final_logit_softcapping, source),
    }
    return Gemma3Config(dataclasses.replace(text, **stated), vision=None,
                        eos_token_ids=base.eos_token_ids)


def _int(meta: dict[str, Any], key: str, source: str) -> int:
    if key not in meta:
        raise GGUFConfigError(f"{source} has no metadata key {key!r}; a Gemma 3 GGUF states it "
                              "(convert the model again with llama.cpp's convert_hf_to_gguf.py)")
    return int(meta[key])


def _describe(shape: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in shape.items())


def _released_size(shape: dict[str, int], source: str) -> Gemma3Config:
    for size in SIZES:
        config = Gemma3Config.for_size(size)
        if all(getattr(config.text, k) == v for k, v in shape.items()):
            return config
    known = "; ".join(
        f"{s}: {_describe({k: getattr(Gemma3Config.for_size(s).text, k) for k in shape})}"
        for s in SIZES)
    raise GGUFConfigError(f"{source} describes a Gemma 3 of unknown size ({_describe(shape)}); "
                          f"the released sizes are {known}. What GGUF does not store "
                          "(query_pre_attn_scalar, sliding-window pattern, local RoPE theta) is "
                          "only known for those")


def _check_base(base: Gemma3Config, shape: dict[str, int], source: str) -> Gemma3Config:
    wrong = [f"{k}: file {v}, config {getattr(base.text, k)}" for k, v in shape.items()
             if getattr(base.text, k) != v]
    if wrong:
        raise GGUFConfigError(f"{source} does not match the config given: " + "; ".join(wrong))
    return base


def _vocab_size(meta: dict[str, Any], source: str, default: int) -> int:
    # llama.cpp drops the embedding rows past the tokenizer (262208 -> 262144 for 4b+), so the
    # file's count, not the release's, is the model's.
    if f"{ARCHITECTURE}.vocab_size" in meta:
        return int(meta[f"{ARCHITECTURE}.vocab_size"])
    tokens = meta.get("tokenizer.ggml.tokens")
    return default if tokens is None else len(tokens)


def _eps(meta: dict[str, Any], released: float) -> float:
    stored = meta.get(f"{ARCHITECTURE}.attention.layer_norm_rms_epsilon")
    # GGUF stores it as float32 (1e-6 reads 9.99999997e-07): keep the exact release value then.
    if stored is None or np.float32(stored) == np.float32(released):
        return released
    return float(stored)


def _rope_global(meta: dict[str, Any], released: RopeConfig, source: str) -> RopeConfig:
    theta = float(meta.get(f"{ARCHITECTURE}.rope.freq_base", released.theta))
    kind = meta.get(f"{ARCHITECTURE}.rope.scaling.type")
    if kind is None:
        return RopeConfig(theta, released.linear_factor)
    if kind not in SUPPORTED_ROPE_SCALING:
        raise GGUFConfigError(f"{source} has {ARCHITECTURE}.rope.scaling.type {kind!r}; "
                              f"supported: {', '.join(SUPPORTED_ROPE_SCALING)}")
    factor = (float(meta.get(f"{ARCHITECTURE}.rope.scaling.factor", 1.0)) if kind == "linear"
              else 1.0)
    return RopeConfig(theta, factor)


def _layer_types(meta: dict[str, Any], released: tuple[str, ...], source: str) -> tuple[str, ...]:
    """llama.cpp hard-codes Gemma 3's 5:1 pattern; newer files may state it (an int period, or
    one bool per layer, true = sliding)."""
    pattern = meta.get(f"{ARCHITECTURE}.attention.sliding_window_pattern")
    if pattern is None:
        return released
    if isinstance(pattern, (list, tuple)):
        if len(pattern) != len(released):
            raise GGUFConfigError(f"{source} has {len(pattern)} entries in "
                                  f"{ARCHITECTURE}.attention.sliding_window_pattern for "
                                  f"{len(released)} layers")
        return tuple(SLIDING if p else GLOBAL for p in pattern)
    return layer_types_from_pattern(len(released), int(pattern))


def _softcap(meta: dict[str, Any], released: float | None, source: str) -> float | None:
    if meta.get(f"{ARCHITECTURE}.attn_logit_softcapping"):
        raise GGUFConfigError(f"{source} asks for attention logit softcapping "
                              f"({ARCHITECTURE}.attn_logit_softcapping), "
                              "which Gemma 3 does not use")
    value = meta.get(f"{ARCHITECTURE}.final_logit_softcapping")
    return released if not value else float(value)
