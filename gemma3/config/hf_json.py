"""Reads transformers config.json dicts in every format Gemma 3 checkpoints use:

- the hub's original files: flat `gemma3_text` (270m, 1b) or minimal nested `gemma3` configs whose
  missing fields take transformers' defaults;
- the intermediate form: `rope_parameters` per layer type plus top-level `rope_theta`;
- the v5 form: `rope_parameters` with the thetas inside, explicit `layer_types`.

Every field is checked as it is read, once: against the types transformers 5.24's strict
configs accept (an integer is not a float there, a boolean is not an integer), and against what
a model can be built from (positive sizes, whole head groups, a window of at least one token, a
finite epsilon >= 0). All problems of a file come in one ConfigError naming the file and key.

The reader returns plain values (the fields of gemma3.config.configs' classes, RoPE parameters as
dicts); those classes build themselves from them, so this module imports none of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from gemma3.config.errors import InputError
from gemma3.config.layer_types import GLOBAL, SLIDING, LayerType, layer_types_from_pattern
from gemma3.config.special_tokens import BOI_ID, BOS_ID, EOI_ID, EOS_ID, IMAGE_TOKEN_ID, PAD_ID

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
# Fields we do not use whose types transformers' strict configs still check: refused alike.
UNUSED_TEXT_TYPES = {"initializer_range": (float,), "use_cache": (bool,),
                     "attention_dropout": (int, float, type(None))}
UNUSED_VISION_TYPES = {"attention_dropout": (int, float), "vision_use_head": (bool,)}
UNUSED_TOP_TYPES = {"initializer_range": (float, type(None))}
_MISSING = object()


class ConfigError(InputError):
    """A config.json that does not describe a Gemma 3 model this library can run."""


def read(config: Any, *, source: str = "config.json") -> dict[str, Any]:
    """The checked fields of a config.json dict: {"text": ..., "vision": ... or None,
    "mm_tokens_per_image", "image_token_id", "boi_token_id", "eoi_token_id", "eos_token_ids"};
    raises one ConfigError listing every problem."""
    problems = Problems(source)
    if not isinstance(config, dict):
        problems.note(f"holds a JSON {_json_kind(config)}; expected a JSON object")
        problems.raise_if_any()
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        problems.note(f"has model_type {model_type!r}; expected 'gemma3' or 'gemma3_text'")
        problems.raise_if_any()
    if model_type == "gemma3_text":
        text = _text(Fields(config, TEXT_DEFAULTS, "", problems))
        eos = _eos(Fields(config, TEXT_DEFAULTS, "", problems))
        problems.raise_if_any()
        return {"text": text, "vision": None, "eos_token_ids": eos}
    return _multimodal(Fields(config, {}, "", problems))


def read_text(raw: dict[str, Any], source: str = "config.json") -> dict[str, Any]:
    """The checked fields of a text_config (or a flat gemma3_text config.json)."""
    problems = Problems(source)
    text = _text(Fields(raw, TEXT_DEFAULTS, "", problems))
    problems.raise_if_any()
    assert text is not None  # _text returns None only after recording a problem, raised above
    return text


def read_vision(raw: dict[str, Any], source: str = "vision_config") -> dict[str, Any]:
    problems = Problems(source)
    vision = _vision(Fields(raw, VISION_DEFAULTS, "", problems))
    problems.raise_if_any()
    assert vision is not None  # _vision returns None only after recording a problem, raised above
    return vision


class Problems(list):
    """The problems found in one file, each a line naming the key, the value and what was
    expected."""

    def __init__(self, source: str):
        super().__init__()
        self.source = source

    def bad(self, key: str, value: Any, expected: str) -> None:
        self.note(f"{key}: {_show(value)}; expected {expected}")

    def note(self, text: str) -> None:
        if text not in self:  # a section read twice (rope_parameters per layer type) says it once
            self.append(text)

    def raise_if_any(self) -> None:
        lines = [f"{self.source} {line}" for line in self]
        if len(lines) == 1:
            raise ConfigError(lines[0])
        if lines:
            raise ConfigError(f"{self.source} has {len(lines)} problems:\n  " + "\n  ".join(lines))


class Fields:
    """One section of a config (the file itself, text_config, vision_config) over its defaults.
    Each reader returns the checked value, or None after recording the problem."""

    def __init__(self, raw: dict, defaults: dict, prefix: str, problems: Problems):
        self.c, self.prefix, self.problems = {**defaults, **raw}, prefix, problems

    def get(self, key: str, default: Any = None) -> Any:
        return self.c.get(key, default)

    def bad(self, key: str, value: Any, expected: str) -> None:
        self.problems.bad(self.prefix + key, value, expected)

    def positive_int(self, key: str) -> int | None:
        value = self.c.get(key, _MISSING)
        if _is_int(value) and value > 0:
            return value
        self.bad(key, value, "a positive integer")
        return None

    def token_id(self, key: str, default: int, vocab: int | None = None) -> int | None:
        """null takes the default (transformers allows null token ids)."""
        value = self.c.get(key)
        if value is None:
            return default
        if _is_int(value) and value >= 0 and (vocab is None or value < vocab):
            return value
        limit = "" if vocab is None else f" below vocab_size {vocab}"
        self.bad(key, value, f"a token id (an integer >= 0{limit}) or null")
        return None

    def eps(self, key: str) -> float | None:
        value = self.c.get(key, _MISSING)
        # A negative epsilon makes rsqrt(mean(x^2) + eps) NaN for small activations.
        if isinstance(value, float) and math.isfinite(value) and value >= 0:
            return value
        hint = " (transformers refuses an integer here)" if _is_int(value) else ""
        self.bad(key, value, f"a finite float >= 0, such as 1e-06{hint}")
        return None

    def number(self, key: str, value: Any) -> float | None:
        """A positive finite int or float (RoPE dicts, which transformers does not type-check)."""
        if _is_number(value) and value > 0:
            return float(value)
        self.bad(key, value, "a positive finite number")
        return None

    def boolean(self, key: str, default: bool, nullable: bool = False) -> bool | None:
        value = self.c.get(key, default)
        if value is None and nullable:
            return default
        if isinstance(value, bool):
            return value
        self.bad(key, value, "true or false")
        return None

    def section(self, key: str, defaults: dict) -> Fields | None:
        """A nested dict (text_config, vision_config); null or absent -> None."""
        value = self.c.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.bad(key, value, "a JSON object or null")
            return None
        return Fields(value, defaults, f"{self.prefix}{key}.", self.problems)

    def types(self, table: Mapping[str, tuple[type, ...]]) -> None:
        for key, allowed in table.items():
            value = self.c.get(key, _MISSING)
            if value is not _MISSING and not _has_type(value, allowed):
                self.bad(key, value, " or ".join(_TYPE_NAMES[t] for t in allowed))


def _multimodal(top: Fields) -> dict[str, Any]:
    problems = top.problems
    text_fields = top.section("text_config", TEXT_DEFAULTS) or Fields({}, TEXT_DEFAULTS,
                                                                    "text_config.", problems)
    vision_fields = top.section("vision_config", VISION_DEFAULTS)
    text = _text(text_fields)
    vision = None if vision_fields is None else _vision(vision_fields)
    top.types(UNUSED_TOP_TYPES)
    tied = top.boolean("tie_word_embeddings", True)
    if tied is False:
        problems.note("has tie_word_embeddings=False; only True is supported "
                      "(every released Gemma 3 checkpoint uses it)")
    per_image = top.positive_int("mm_tokens_per_image") if "mm_tokens_per_image" in top.c else 256
    if per_image and vision:
        _check_tokens_per_image(top, per_image, vision)
    ids = {name: top.token_id(key, default) for name, key, default in (
        ("image_token_id", _spelling(top, "image_token"), IMAGE_TOKEN_ID),
        ("boi_token_id", _spelling(top, "boi_token"), BOI_ID),
        ("eoi_token_id", _spelling(top, "eoi_token"), EOI_ID))}
    eos = _eos(top if "eos_token_id" in top.c else text_fields)
    problems.raise_if_any()
    return {"text": text, "vision": vision, "mm_tokens_per_image": per_image,
            "eos_token_ids": eos, **ids}


def _spelling(top: Fields, stem: str) -> str:
    """transformers writes `*_index`; its attribute map also reads `*_id`."""
    return next((k for k in (f"{stem}_index", f"{stem}_id") if top.get(k) is not None),
                f"{stem}_index")


def _check_tokens_per_image(top: Fields, per_image: int, vision: dict[str, Any]) -> None:
    side, per_side = math.isqrt(per_image), vision["image_size"] // vision["patch_size"]
    if side * side != per_image or per_side % side:
        top.bad("mm_tokens_per_image", per_image,
                f"a square number whose side divides the vision tower's "
                f"{per_side} patches per side (image_size // patch_size)")


def _text(f: Fields) -> dict[str, Any] | None:
    _refuse_unsupported(f)
    f.types(UNUSED_TEXT_TYPES)
    sizes = {k: f.positive_int(k) for k in (
        "vocab_size", "hidden_size", "intermediate_size", "num_attention_heads",
        "num_key_value_heads", "head_dim", "query_pre_attn_scalar", "sliding_window",
        "max_position_embeddings")}
    _check_heads(f, sizes)
    values: dict[str, Any] = dict(
        **sizes,
        layer_types=_layer_types(f),
        rope_local=_rope(f, SLIDING),
        rope_global=_rope(f, GLOBAL),
        rms_norm_eps=f.eps("rms_norm_eps"),
        final_logit_softcapping=_softcap(f),
        pad_token_id=f.token_id("pad_token_id", PAD_ID, sizes["vocab_size"]),
        # bos is not used by the model (the tokenizer adds it); null keeps the Gemma id.
        bos_token_id=f.token_id("bos_token_id", BOS_ID),
    )
    if f.problems:
        return None  # the problems are recorded; the caller raises before this is used
    values["query_pre_attn_scalar"] = float(values["query_pre_attn_scalar"])
    return values


def _check_heads(f: Fields, sizes: dict[str, int | None]) -> None:
    heads, kv_heads, hidden = (sizes[k] for k in ("num_attention_heads", "num_key_value_heads",
                                                  "hidden_size"))
    p = f.prefix
    if heads and kv_heads and heads % kv_heads:
        f.problems.note(f"{p}num_attention_heads ({heads}) is not a multiple of "
                        f"{p}num_key_value_heads ({kv_heads}); grouped-query attention needs "
                        "whole groups")
    if heads and hidden and hidden % heads:  # transformers' validate_architecture refuses it
        f.problems.note(f"{p}hidden_size ({hidden}) is not a multiple of "
                        f"{p}num_attention_heads ({heads}); transformers refuses this too")
    if sizes["head_dim"] and sizes["head_dim"] % 2:
        f.bad("head_dim", sizes["head_dim"], "an even number (RoPE rotates pairs)")


def _softcap(f: Fields) -> float | None:
    value = f.get("final_logit_softcapping")
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return value
    f.bad("final_logit_softcapping", value, "null or a nonzero finite float, such as 30.0")
    return None


def _vision(f: Fields) -> dict[str, Any] | None:
    if f.get("model_type", "siglip_vision_model") != "siglip_vision_model":
        f.problems.note(f"has {f.prefix}model_type {f.get('model_type')!r}; "
                        "expected 'siglip_vision_model'")
    if f.get("hidden_act") != "gelu_pytorch_tanh":
        f.problems.note(f"has {f.prefix}hidden_act {f.get('hidden_act')!r}; "
                        "expected 'gelu_pytorch_tanh'")
    # vision_use_head=true builds SigLIP's pooling head, which Gemma 3 never runs: its tensors
    # are skipped by name (gemma3.ckpt.weights.UNUSED); only the flag's type is checked here.
    f.types(UNUSED_VISION_TYPES)
    values: dict[str, int | float | None] = {k: f.positive_int(k) for k in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "image_size", "patch_size", "num_channels")}
    values["layer_norm_eps"] = f.eps("layer_norm_eps")
    if values["hidden_size"] and values["num_attention_heads"] \
            and values["hidden_size"] % values["num_attention_heads"]:
        f.problems.note(f"{f.prefix}hidden_size ({values['hidden_size']}) is not a multiple of "
                        f"{f.prefix}num_attention_heads ({values['num_attention_heads']})")
    if values["image_size"] and values["patch_size"] \
            and values["patch_size"] > values["image_size"]:
        f.bad("patch_size", values["patch_size"], f"at most image_size ({values['image_size']})")
    if any(v is None for v in values.values()):
        return None
    return values


def _refuse_unsupported(f: Fields) -> None:
    """Options transformers accepts for Gemma 3 that no Gemma 3 release uses and we don't run."""
    activation = f.get("hidden_activation")
    if not isinstance(activation, str):
        f.bad("hidden_activation", activation, "a string ('gelu_pytorch_tanh')")
        activation = None
    checks = [("hidden_activation", "gelu_pytorch_tanh", activation),
              ("attention_bias", False, f.boolean("attention_bias", False)),
              ("tie_word_embeddings", True, f.boolean("tie_word_embeddings", True)),
              ("use_bidirectional_attention", False,
               f.boolean("use_bidirectional_attention", False, nullable=True))]
    for key, expected, got in checks:
        if got is not None and got != expected:  # None: a wrong type, already recorded
            f.problems.note(f"has {f.prefix}{key}={got!r}; only {expected!r} is supported "
                            "(every released Gemma 3 checkpoint uses it)")
    # transformers applies it inside attention; no Gemma 3 release sets it and we have none.
    if f.get("attn_logit_softcapping") is not None:
        f.bad("attn_logit_softcapping", f.get("attn_logit_softcapping"),
              "null (attention logit soft-capping is not supported: no Gemma 3 release uses it)")


def _layer_types(f: Fields) -> tuple[str, ...] | None:
    num_layers = f.positive_int("num_hidden_layers")
    types = f.get("layer_types")
    if types is not None:
        if not isinstance(types, list):
            f.bad("layer_types", types, f"a list of {SLIDING!r} or {GLOBAL!r}, one per layer")
            return None
        bad = [i for i, t in enumerate(types) if t not in (SLIDING, GLOBAL)]
        for i in bad[:3]:
            f.bad(f"layer_types[{i}]", types[i], f"{SLIDING!r} or {GLOBAL!r}")
        if len(bad) > 3:
            f.problems.note(f"has {len(bad)} such entries in {f.prefix}layer_types in all")
        if num_layers is not None and len(types) != num_layers:
            f.problems.note(f"has {len(types)} {f.prefix}layer_types for "
                            f"num_hidden_layers={num_layers}")
        return None if bad or num_layers is None or len(types) != num_layers else tuple(types)
    # The key was renamed to `_sliding_window_pattern`; read both spellings (transformers 5.24
    # reads only the first and would fall back to 6).
    keys = [k for k in ("sliding_window_pattern", "_sliding_window_pattern") if k in f.c]
    found = [f.positive_int(k) for k in keys]
    if None in found or num_layers is None:
        return None
    patterns = {p for p in found if p is not None}  # no None left: the filter only narrows
    if len(patterns) > 1:
        f.problems.note(f"has {f.prefix}sliding_window_pattern and _sliding_window_pattern "
                        f"disagreeing: {sorted(patterns)}")
        return None
    return layer_types_from_pattern(num_layers, patterns.pop() if patterns else 6)


def _rope(f: Fields, layer_type: LayerType) -> dict[str, float] | None:
    all_params = f.get("rope_parameters") or {}
    if not isinstance(all_params, dict):
        f.bad("rope_parameters", all_params, "a JSON object keyed by layer type, or null")
        return None
    params, key = all_params.get(layer_type) or {}, f"rope_parameters.{layer_type}"
    scaling = f.get("rope_scaling") if layer_type == GLOBAL else None
    for name, value in ((key, params), ("rope_scaling", scaling or {})):
        if not isinstance(value, dict):
            f.bad(name, value, "a JSON object or null")
            return None
    params = {**params, **(scaling or {})}  # legacy: rope_scaling applies to global layers only
    legacy = "rope_theta" if layer_type == GLOBAL else "rope_local_base_freq"
    theta_key = f"{key}.rope_theta" if "rope_theta" in params else legacy
    theta = params.get("rope_theta", f.get(legacy))
    theta = f.number(theta_key, theta) if theta is not None else DEFAULT_THETA[layer_type]
    # Old configs spell it `type`; transformers 5.24 ignores that key and drops the factor.
    rope_type = params.get("rope_type", params.get("type", "default"))
    if rope_type not in SUPPORTED_ROPE_TYPES:
        f.problems.note(f"asks for rope_type {rope_type!r} on {layer_type} layers "
                        f"({f.prefix}{key}); supported: {', '.join(SUPPORTED_ROPE_TYPES)}")
        return None
    factor = f.number(f"{key}.factor", params.get("factor", 1.0)) if rope_type == "linear" else 1.0
    if theta is None or factor is None:
        return None
    return {"theta": theta, "linear_factor": factor}


def _eos(f: Fields) -> tuple[int, ...]:
    eos = f.get("eos_token_id", EOS_ID)
    if eos is None:
        return ()  # transformers allows no eos: generation then stops at max_new_tokens only
    ids = eos if isinstance(eos, list) else [eos]
    if not all(_is_int(e) and e >= 0 for e in ids):
        f.bad("eos_token_id", eos, "a token id, a list of token ids (integers >= 0), or null")
        return ()
    return tuple(ids)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _has_type(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)


_TYPE_NAMES = {int: "an integer", float: "a float", bool: "true or false", type(None): "null",
               str: "a string"}


def _show(value: Any) -> str:
    """The value as config.json spells it (null, true, "8"), cut short if long."""
    if value is _MISSING:
        return "missing"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number",
             type(None): "null"}
    return kinds.get(type(value), type(value).__name__)
