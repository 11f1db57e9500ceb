"""Gemma 3 configurations: one frozen dataclass per tower and one factory per released size.

config.json files are read by gemma3.config.hf_json, which returns checked plain values; the
classes here build themselves from those (`from_hf_config`), so the reader imports none of them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from gemma3.config import hf_json
from gemma3.config.errors import InputError
from gemma3.config.layer_types import GLOBAL, SLIDING, LayerType, layer_types_from_pattern
from gemma3.config.special_tokens import (
    BOI_ID,
    BOS_ID,
    END_OF_TURN_ID,
    EOI_ID,
    EOS_ID,
    IMAGE_TOKEN_ID,
    PAD_ID,
)


@dataclasses.dataclass(frozen=True)
class RopeConfig:
    """RoPE for one layer type: base frequency and linear position scaling (1.0 = none)."""

    theta: float
    linear_factor: float = 1.0

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> RopeConfig:
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """The Gemma 3 decoder. Field names follow transformers' Gemma3TextConfig."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    query_pre_attn_scalar: float
    sliding_window: int
    layer_types: tuple[LayerType, ...]
    rope_local: RopeConfig = RopeConfig(10_000.0)
    rope_global: RopeConfig = RopeConfig(1_000_000.0)
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 131_072
    final_logit_softcapping: float | None = None
    pad_token_id: int = PAD_ID
    bos_token_id: int = BOS_ID

    @classmethod
    def from_hf_config(cls, config: dict[str, Any], *, source: str = "config.json") -> TextConfig:
        """A text_config dict (or a flat gemma3_text config.json), checked field by field."""
        return cls.from_fields(hf_json.read_text(config, source=source))

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> TextConfig:
        """From hf_json's checked values (RoPE parameters as dicts)."""
        return cls(**{**fields, "rope_local": RopeConfig.from_fields(fields["rope_local"]),
                      "rope_global": RopeConfig.from_fields(fields["rope_global"])})

    def __post_init__(self):
        if self.num_attention_heads % self.num_key_value_heads:
            raise InputError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.head_dim % 2:
            raise InputError(f"head_dim must be even for RoPE, got {self.head_dim}")
        bad = sorted({t for t in self.layer_types if t not in (SLIDING, GLOBAL)})
        if bad:
            raise InputError(f"layer_types has {bad}; expected {SLIDING!r} or {GLOBAL!r}")

    @property
    def num_hidden_layers(self) -> int:
        return len(self.layer_types)

    @property
    def num_groups(self) -> int:
        """Query heads per kv head (GQA)."""
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def attention_scale(self) -> float:
        # Gemma scales by query_pre_attn_scalar, not head_dim: 168**-0.5 for the 27b.
        return self.query_pre_attn_scalar**-0.5

    @property
    def embed_scale(self) -> float:
        return math.sqrt(self.hidden_size)

    @property
    def global_layers(self) -> tuple[int, ...]:
        return tuple(i for i, t in enumerate(self.layer_types) if t == GLOBAL)

    def rope(self, layer_type: LayerType) -> RopeConfig:
        return self.rope_global if layer_type == GLOBAL else self.rope_local

    def num_params(self) -> int:
        """Closed-form parameter count; the tied output head counts once."""
        h, hd = self.hidden_size, self.head_dim
        qo = 2 * h * self.num_attention_heads * hd
        kv = 2 * h * self.num_key_value_heads * hd
        per_layer = qo + kv + 2 * hd + 3 * h * self.intermediate_size + 4 * h
        return self.vocab_size * h + h + self.num_hidden_layers * per_layer


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """The SigLIP vision tower (So400m/14 at 896 px for every released size)."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    image_size: int = 896
    patch_size: int = 14
    num_channels: int = 3
    layer_norm_eps: float = 1e-6

    @classmethod
    def from_hf_config(cls, config: dict[str, Any], *, source: str = "vision_config"
                       ) -> VisionConfig:
        return cls(**hf_json.read_vision(config, source=source))

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.patches_per_side**2

    def num_params(self) -> int:
        d, f, c, p = self.hidden_size, self.intermediate_size, self.num_channels, self.patch_size
        per_layer = 4 * (d * d + d) + 2 * d * f + f + d + 4 * d
        return d * c * p * p + d + self.num_patches * d + self.num_hidden_layers * per_layer + 2 * d


@dataclasses.dataclass(frozen=True)
class Gemma3Config:
    """A whole checkpoint: the text decoder, and for 4b and up the vision tower and projector."""

    text: TextConfig
    vision: VisionConfig | None = None
    mm_tokens_per_image: int = 256
    image_token_id: int = IMAGE_TOKEN_ID
    boi_token_id: int = BOI_ID
    eoi_token_id: int = EOI_ID
    eos_token_ids: tuple[int, ...] = (EOS_ID,)

    @property
    def multimodal(self) -> bool:
        return self.vision is not None

    def num_params(self) -> int:
        total = self.text.num_params()
        if self.vision is not None:
            total += (self.vision.num_params()
                      + self.vision.hidden_size * (self.text.hidden_size + 1))
        return total

    # One factory per released size; values written out as the hub configs give them.

    @classmethod
    def gemma3_270m(cls) -> Gemma3Config:
        return cls(_text(640, 2048, 18, heads=4, kv_heads=1, window=512, vocab=262_144,
                         max_pos=32_768))

    @classmethod
    def gemma3_1b(cls) -> Gemma3Config:
        return cls(_text(1152, 6912, 26, heads=4, kv_heads=1, window=512, vocab=262_144,
                         max_pos=32_768), eos_token_ids=(EOS_ID, END_OF_TURN_ID))

    @classmethod
    def gemma3_4b(cls) -> Gemma3Config:
        return _multimodal(_text(2560, 10240, 34, heads=8, kv_heads=4, rope_factor=8.0))

    @classmethod
    def gemma3_12b(cls) -> Gemma3Config:
        return _multimodal(_text(3840, 15360, 48, heads=16, kv_heads=8, rope_factor=8.0))

    @classmethod
    def gemma3_27b(cls) -> Gemma3Config:
        return _multimodal(_text(5376, 21504, 62, heads=32, kv_heads=16, head_dim=128,
                                 query_pre_attn_scalar=168, rope_factor=8.0))

    @classmethod
    def for_size(cls, size: str) -> Gemma3Config:
        """The factory for '270m', '1b', '4b', '12b' or '27b'."""
        factories = {"270m": cls.gemma3_270m, "1b": cls.gemma3_1b, "4b": cls.gemma3_4b,
                     "12b": cls.gemma3_12b, "27b": cls.gemma3_27b}
        if size not in factories:
            raise InputError(f"unknown Gemma 3 size {size!r}; expected one of {sorted(factories)}")
        return factories[size]()

    @classmethod
    def from_hf_config(cls, config: dict[str, Any], *, source: str = "config.json"
                       ) -> Gemma3Config:
        """A transformers config.json dict (any format), validated field by field; one
        ConfigError lists every problem of the file."""
        fields = hf_json.read(config, source=source)
        vision = fields["vision"]
        return cls(text=TextConfig.from_fields(fields["text"]),
                   vision=None if vision is None else VisionConfig(**vision),
                   **{k: v for k, v in fields.items() if k not in ("text", "vision")})


def _text(hidden, intermediate, layers, *, heads, kv_heads, head_dim=256,
          query_pre_attn_scalar=256, window=1024, vocab=262_208, max_pos=131_072,
          rope_factor=1.0) -> TextConfig:
    return TextConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
        query_pre_attn_scalar=query_pre_attn_scalar, sliding_window=window,
        layer_types=layer_types_from_pattern(layers),
        rope_global=RopeConfig(1_000_000.0, rope_factor), max_position_embeddings=max_pos,
    )


def _multimodal(text: TextConfig) -> Gemma3Config:
    return Gemma3Config(text, VisionConfig(), eos_token_ids=(EOS_ID, END_OF_TURN_ID))
