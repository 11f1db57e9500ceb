"""The hub's tensor inventory of a model, computed without writing anything
(docs/gemma3-facts.md, Checkpoint layouts):
every stored tensor's name, shape and shard, and the index's total_size.

Names are the hub's (4.50-era converter): `model.*` for 270m/1b, `language_model.model.*`,
`vision_tower.vision_model.*` and `multi_modal_projector.*` for 4b and up; linear weights are
PyTorch [out, in]; no lm_head (tied). All tensors are BF16.
"""

from __future__ import annotations

import dataclasses
import math

from gemma3.config import Gemma3Config, TextConfig, VisionConfig
from harness.checkpoints.registry import ModelSpec

BF16_BYTES = 2


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    shard: str
    dtype: str = "BF16"

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * BF16_BYTES


def text_tensors(cfg: TextConfig, prefix: str) -> list[tuple[str, tuple[int, ...]]]:
    h, i, hd = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    q, kv = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    per_layer: list[tuple[str, tuple[int, ...]]] = [
        ("input_layernorm.weight", (h,)),
        ("self_attn.q_proj.weight", (q, h)),
        ("self_attn.k_proj.weight", (kv, h)),
        ("self_attn.v_proj.weight", (kv, h)),
        ("self_attn.o_proj.weight", (h, q)),
        ("self_attn.q_norm.weight", (hd,)),
        ("self_attn.k_norm.weight", (hd,)),
        ("post_attention_layernorm.weight", (h,)),
        ("pre_feedforward_layernorm.weight", (h,)),
        ("mlp.gate_proj.weight", (i, h)),
        ("mlp.up_proj.weight", (i, h)),
        ("mlp.down_proj.weight", (h, i)),
        ("post_feedforward_layernorm.weight", (h,)),
    ]
    out: list[tuple[str, tuple[int, ...]]] = [(f"{prefix}embed_tokens.weight", (cfg.vocab_size, h))]
    for layer in range(cfg.num_hidden_layers):
        out += [(f"{prefix}layers.{layer}.{name}", shape) for name, shape in per_layer]
    out.append((f"{prefix}norm.weight", (h,)))
    return out


def vision_tensors(cfg: VisionConfig, text_hidden: int) -> list[tuple[str, tuple[int, ...]]]:
    d, f, c, p = cfg.hidden_size, cfg.intermediate_size, cfg.num_channels, cfg.patch_size
    prefix = "vision_tower.vision_model."
    out: list[tuple[str, tuple[int, ...]]] = [
        ("multi_modal_projector.mm_input_projection_weight", (d, text_hidden)),  # x @ W
        ("multi_modal_projector.mm_soft_emb_norm.weight", (d,)),
        (f"{prefix}embeddings.patch_embedding.weight", (d, c, p, p)),
        (f"{prefix}embeddings.patch_embedding.bias", (d,)),
        (f"{prefix}embeddings.position_embedding.weight", (cfg.num_patches, d)),
    ]
    per_layer: list[tuple[str, tuple[int, ...]]] = [("layer_norm1.weight", (d,)),
                                                    ("layer_norm1.bias", (d,))]
    for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
        per_layer += [(f"self_attn.{proj}.weight", (d, d)), (f"self_attn.{proj}.bias", (d,))]
    per_layer += [("layer_norm2.weight", (d,)), ("layer_norm2.bias", (d,)),
                  ("mlp.fc1.weight", (f, d)), ("mlp.fc1.bias", (f,)),
                  ("mlp.fc2.weight", (d, f)), ("mlp.fc2.bias", (d,))]
    for layer in range(cfg.num_hidden_layers):
        out += [(f"{prefix}encoder.layers.{layer}.{name}", shape) for name, shape in per_layer]
    out += [(f"{prefix}post_layernorm.weight", (d,)), (f"{prefix}post_layernorm.bias", (d,))]
    return out


def inventory(cfg: Gemma3Config) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every stored tensor, text first (the order shards are filled in)."""
    if cfg.vision is None:
        return text_tensors(cfg.text, "model.")
    return text_tensors(cfg.text, "language_model.model.") + vision_tensors(
        cfg.vision, cfg.text.hidden_size)


def plan(spec: ModelSpec, cfg: Gemma3Config | None = None) -> list[TensorSpec]:
    """Every tensor with its shard. Shards are filled in inventory order, each taking about
    1/n of the bytes (the hub's split is not known tensor by tensor; the loader does not care)."""
    tensors = inventory(cfg or spec.config())
    sizes = [math.prod(shape) * BF16_BYTES for _, shape in tensors]
    total, names, start, out = sum(sizes), spec.shard_names, 0, []
    for (name, shape), size in zip(tensors, sizes):
        # A tensor goes to the shard its first byte falls in.
        shard = min(len(names) - 1, start * len(names) // total)
        out.append(TensorSpec(name, shape, names[shard]))
        start += size
    return out


def total_size(tensors: list[TensorSpec]) -> int:
    return sum(t.nbytes for t in tensors)


def weight_map(tensors: list[TensorSpec]) -> dict[str, str]:
    return {t.name: t.shard for t in sorted(tensors, key=lambda t: t.name)}
