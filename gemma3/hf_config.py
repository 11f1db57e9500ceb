"""Reads transformers config.json dicts in every format Gemma 3 checkpoints use (facts sheet 4.4):

- the hub's original files: flat `gemma3_text` (270m, 1b) or minimal nested `gemma3` configs whose
  missing fields take transformers' defaults;
- the intermediate form: `rope_parameters` per layer type plus top-level `rope_theta`;
- the v5 form: `rope_parameters` with the thetas inside, explicit `layer_types`.
"""

from __future__ import annotations

from typing import Any

from gemma3.config import (
    BOI_ID,
    EOI_ID,
    EOS_ID,
    GLOBAL,
    IMAGE_TOKEN_ID,
    SLIDING,
    Gemma3Config,
    RopeConfig,
    TextConfig,
    VisionConfig,
    layer_types_from_pattern,
)

# transformers' Gemma3TextConfig defaults: what a minimal nested hub config leaves out.
TEXT_DEFAULTS: dict[str, Any] = {
    "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216,
    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
    "query_pre_attn_scalar": 256, "sliding_window": 4096, "rms_norm_eps": 1e-6,
    "max_position_embeddings": 131_072, "final_logit_softcapping": None, "pad_token_id": 0,
    "bos_token_id": 2, "eos_token_id": 1, "hidden_activation": "gelu_pytorch_tanh",
}
# SiglipVisionConfig defaults.
VISION_DEFAULTS: dict[str, Any] = {
    "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
    "num_attention_heads": 12, "image_size": 224, "patch_size": 16, "num_channels": 3,
    "layer_norm_eps": 1e-6, "hidden_act": "gelu_pytorch_tanh",
}
DEFAULT_THETA = {GLOBAL: 1_000_000.0, SLIDING: 10_000.0}
SUPPORTED_ROPE_TYPES = ("default", "linear")
MODEL_TYPES = ("gemma3", "gemma3_text")


class ConfigError(ValueError):
    """A config.json that does not describe a Gemma 3 model this library can run."""


def config_from_hf(config: dict[str, Any], *, source: str = "config.json") -> Gemma3Config:
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ConfigError(
            f"{source} has model_type {model_type!r}; expected 'gemma3' or 'gemma3_text'"
        )
    if model_type == "gemma3_text":
        return Gemma3Config(text_from_hf(config, source), eos_token_ids=_eos(config))
    text = config.get("text_config") or {}
    vision = config.get("vision_config")
    return Gemma3Config(
        text=text_from_hf(text, f"{source} text_config"),
        vision=None if vision is None else vision_from_hf(vision, f"{source} vision_config"),
        mm_tokens_per_image=int(config.get("mm_tokens_per_image", 256)),
        image_token_id=int(_first(config, "image_token_index", "image_token_id",
                                  default=IMAGE_TOKEN_ID)),
        boi_token_id=int(_first(config, "boi_token_index", "boi_token_id", default=BOI_ID)),
        eoi_token_id=int(_first(config, "eoi_token_index", "eoi_token_id", default=EOI_ID)),
        eos_token_ids=_eos(config if "eos_token_id" in config else text),
    )


def text_from_hf(raw: dict[str, Any], source: str = "config.json") -> TextConfig:
    c = {**TEXT_DEFAULTS, **raw}
    _refuse_unsupported(c, source)
    return TextConfig(
        vocab_size=int(c["vocab_size"]),
        hidden_size=int(c["hidden_size"]),
        intermediate_size=int(c["intermediate_size"]),
        num_attention_heads=int(c["num_attention_heads"]),
        num_key_value_heads=int(c["num_key_value_heads"]),
        head_dim=int(c["head_dim"]),
        query_pre_attn_scalar=float(c["query_pre_attn_scalar"]),
        sliding_window=int(c["sliding_window"]),
        layer_types=_layer_types(c, source),
        rope_local=_rope(c, SLIDING, source),
        rope_global=_rope(c, GLOBAL, source),
        rms_norm_eps=float(c["rms_norm_eps"]),
        max_position_embeddings=int(c["max_position_embeddings"]),
        final_logit_softcapping=c.get("final_logit_softcapping"),
        pad_token_id=int(c["pad_token_id"]),
        bos_token_id=int(c["bos_token_id"]),
    )


def vision_from_hf(raw: dict[str, Any], source: str = "vision_config") -> VisionConfig:
    c = {**VISION_DEFAULTS, **raw}
    if c.get("model_type", "siglip_vision_model") != "siglip_vision_model":
        raise ConfigError(f"{source} has model_type {c['model_type']!r}; "
                          "expected 'siglip_vision_model'")
    if c["hidden_act"] != "gelu_pytorch_tanh":
        raise ConfigError(f"{source} has hidden_act {c['hidden_act']!r}; "
                          "expected 'gelu_pytorch_tanh'")
    fields = [f.name for f in VisionConfig.__dataclass_fields__.values()]
    return VisionConfig(**{k: c[k] for k in fields})


def _refuse_unsupported(c: dict[str, Any], source: str) -> None:
    """Options transformers accepts for Gemma 3 that no Gemma 3 release uses and we don't run."""
    checks = [
        ("hidden_activation", "gelu_pytorch_tanh", c.get("hidden_activation")),
        ("attention_bias", False, bool(c.get("attention_bias", False))),
        ("tie_word_embeddings", True, bool(c.get("tie_word_embeddings", True))),
        ("use_bidirectional_attention", False, bool(c.get("use_bidirectional_attention", False))),
    ]
    for key, expected, got in checks:
        if got != expected:
            raise ConfigError(f"{source} has {key}={got!r}; only {expected!r} is supported "
                              "(every released Gemma 3 checkpoint uses it)")


def _layer_types(c: dict[str, Any], source: str) -> tuple[str, ...]:
    num_layers = int(c["num_hidden_layers"])
    if c.get("layer_types") is not None:
        types = tuple(c["layer_types"])
        if len(types) != num_layers:
            raise ConfigError(f"{source} has {len(types)} layer_types for "
                              f"num_hidden_layers={num_layers}")
        return types
    # The key was renamed to `_sliding_window_pattern`; read both spellings (transformers 5.24
    # reads only the first and would fall back to 6).
    patterns = {c[k] for k in ("sliding_window_pattern", "_sliding_window_pattern") if k in c}
    if len(patterns) > 1:
        raise ConfigError(f"{source} has sliding_window_pattern and _sliding_window_pattern "
                          f"disagreeing: {sorted(patterns)}")
    return layer_types_from_pattern(num_layers, int(patterns.pop()) if patterns else 6)


def _rope(c: dict[str, Any], layer_type: str, source: str) -> RopeConfig:
    params = dict((c.get("rope_parameters") or {}).get(layer_type) or {})
    if layer_type == GLOBAL and c.get("rope_scaling"):
        params.update(c["rope_scaling"])  # legacy: rope_scaling applies to global layers only
    legacy_theta = c.get("rope_theta" if layer_type == GLOBAL else "rope_local_base_freq")
    theta = params.get("rope_theta", legacy_theta if legacy_theta is not None
                       else DEFAULT_THETA[layer_type])
    # Old configs spell it `type`; transformers 5.24 ignores that key and drops the factor.
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ConfigError(f"{source} asks for rope_type {rope_type!r} on {layer_type} layers; "
                          f"supported: {', '.join(SUPPORTED_ROPE_TYPES)}")
    factor = float(params.get("factor", 1.0)) if rope_type == "linear" else 1.0
    return RopeConfig(float(theta), factor)


def _eos(c: dict[str, Any]) -> tuple[int, ...]:
    eos = c.get("eos_token_id", EOS_ID)
    return tuple(int(e) for e in (eos if isinstance(eos, list) else [eos]))


def _first(c: dict[str, Any], *keys: str, default: Any) -> Any:
    return next((c[k] for k in keys if c.get(k) is not None), default)
