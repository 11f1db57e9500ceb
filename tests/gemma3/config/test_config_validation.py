"""config.json is checked field by field as it is read: every bad value is named with its file
and key, all problems of a file come in one error, and what transformers 5.24 loads we load."""

from __future__ import annotations

import json

import pytest

import gemma3
from gemma3.ckpt.errors import CheckpointError
from gemma3.config import ConfigError, Gemma3Config
from harness.checkpoints.synthetic import HUB_CONFIGS  # the hub's config.json of each size

SOURCE = "ckpt/config.json"


def hub_config(size: str) -> dict:
    return json.loads((HUB_CONFIGS / f"gemma-3-{size}.json").read_text())


def flat(**change) -> dict:
    """The 1b hub config (flat gemma3_text) with some keys changed."""
    return {**hub_config("1b"), **change}


def nested(text=None, vision=None, **change) -> dict:
    """The 4b hub config (nested gemma3) with keys of text_config / vision_config changed."""
    raw = hub_config("4b")
    raw["text_config"].update(text or {})
    raw["vision_config"].update(vision or {})
    return {**raw, **change}


def refused(raw) -> str:
    with pytest.raises(ConfigError) as e:
        Gemma3Config.from_hf_config(raw, source=SOURCE)
    return str(e.value)


NAN = float("nan")
# (config, the line the user sees after "ckpt/config.json ")
BAD = {
    "negative heads": (nested({"num_attention_heads": -4}),
                       "text_config.num_attention_heads: -4; expected a positive integer"),
    "zero heads": (flat(num_attention_heads=0), "num_attention_heads: 0; expected a positive"),
    "zero kv heads": (flat(num_key_value_heads=0), "num_key_value_heads: 0; expected a positive"),
    "null size": (flat(hidden_size=None), "hidden_size: null; expected a positive integer"),
    "zero vocab": (flat(vocab_size=0), "vocab_size: 0; expected a positive integer"),
    "negative mlp": (flat(intermediate_size=-6912), "intermediate_size: -6912; expected a posit"),
    "zero layers": (flat(num_hidden_layers=0, layer_types=None),
                    "num_hidden_layers: 0; expected a positive integer"),
    "string size": (flat(hidden_size="1152"), 'hidden_size: "1152"; expected a positive integer'),
    "bool size": (flat(num_hidden_layers=True, layer_types=None),
                  "num_hidden_layers: true; expected a positive integer"),
    "float size": (flat(head_dim=256.0), "head_dim: 256.0; expected a positive integer"),
    "odd head_dim": (flat(head_dim=255), "head_dim: 255; expected an even number"),
    "float scalar": (flat(query_pre_attn_scalar=256.0),
                     "query_pre_attn_scalar: 256.0; expected a positive integer"),
    "kv not dividing": (flat(num_key_value_heads=3),
                        "num_attention_heads (4) is not a multiple of num_key_value_heads (3)"),
    "hidden not dividing": (flat(hidden_size=1154),
                            "hidden_size (1154) is not a multiple of num_attention_heads (4)"),
    "zero window": (flat(sliding_window=0), "sliding_window: 0; expected a positive integer"),
    "negative window": (flat(sliding_window=-512), "sliding_window: -512; expected a positive"),
    "null window": (flat(sliding_window=None), "sliding_window: null; expected a positive"),
    "negative eps": (flat(rms_norm_eps=-1e-6), "rms_norm_eps: -1e-06; expected a finite float >= 0"),
    "nan eps": (flat(rms_norm_eps=NAN), "rms_norm_eps: NaN; expected a finite float >= 0"),
    "string eps": (flat(rms_norm_eps="1e-6"), 'rms_norm_eps: "1e-6"; expected a finite float'),
    "integer eps": (flat(rms_norm_eps=1),
                    ("rms_norm_eps: 1; expected a finite float >= 0, such as 1e-06 (transformers "
                    "refuses an integer here)")),
    "string theta": (flat(rope_theta="1e6"), 'rope_theta: "1e6"; expected a positive finite'),
    "negative local theta": (flat(rope_local_base_freq=-1.0),
                             "rope_local_base_freq: -1.0; expected a positive finite number"),
    "zero rope factor": (nested({"rope_scaling": {"rope_type": "linear", "factor": 0.0}}),
                         ("text_config.rope_parameters.full_attention.factor: 0.0; expected a "
                         "positive finite number")),
    "rope_parameters list": (flat(rope_parameters=[1]),
                             "rope_parameters: [1]; expected a JSON object keyed by layer type"),
    "zero softcap": (flat(final_logit_softcapping=0.0),
                     "final_logit_softcapping: 0.0; expected null or a nonzero finite float"),
    "attention softcap": (flat(attn_logit_softcapping=50.0),
                          "attn_logit_softcapping: 50.0; expected null (attention logit"),
    "layer_types string": (flat(layer_types="sliding_attention"),
                           'layer_types: "sliding_attention"; expected a list of'),
    "layer_types numbers": (flat(layer_types=[1] * 26),
                            "layer_types[0]: 1; expected 'sliding_attention' or 'full_attention'"),
    "zero pattern": (flat(sliding_window_pattern=0),
                     "sliding_window_pattern: 0; expected a positive integer"),
    "eos string": (flat(eos_token_id=["1"]), 'eos_token_id: ["1"]; expected a token id, a list'),
    "eos bool": (flat(eos_token_id=True), "eos_token_id: true; expected a token id"),
    "eos float": (flat(eos_token_id=[1, 106.5]), "eos_token_id: [1, 106.5]; expected a token id"),
    "pad outside vocab": (flat(pad_token_id=262_144),
                          ("pad_token_id: 262144; expected a token id (an integer >= 0 below "
                          "vocab_size 262144) or null")),
    "negative pad": (flat(pad_token_id=-1), "pad_token_id: -1; expected a token id"),
    "integer bool": (flat(tie_word_embeddings=0), "tie_word_embeddings: 0; expected true or false"),
    "unused typed field": (flat(initializer_range="0.02"),
                           'initializer_range: "0.02"; expected a float'),
    "vision bool size": (nested(vision={"patch_size": True}),
                         "vision_config.patch_size: true; expected a positive integer"),
    "vision zero width": (nested(vision={"hidden_size": 0}),
                          "vision_config.hidden_size: 0; expected a positive integer"),
    "vision heads": (nested(vision={"num_attention_heads": 5}),
                     ("vision_config.hidden_size (1152) is not a multiple of "
                     "vision_config.num_attention_heads (5)")),
    "vision eps": (nested(vision={"layer_norm_eps": -1e-6}),
                   "vision_config.layer_norm_eps: -1e-06; expected a finite float >= 0"),
    "vision head flag": (nested(vision={"vision_use_head": 1}),
                         "vision_config.vision_use_head: 1; expected true or false"),
    "tokens per image": (nested(mm_tokens_per_image=250),
                         ("mm_tokens_per_image: 250; expected a square number whose side divides "
                         "the vision tower's 64 patches per side")),
    "text_config list": (nested(text_config=[1]), "text_config: [1]; expected a JSON object"),
    "vision_config string": (nested(vision_config="siglip"),
                             'vision_config: "siglip"; expected a JSON object or null'),
    "not an object": ([1, 2], "holds a JSON array; expected a JSON object"),
    "a string": ("gemma3", "holds a JSON string; expected a JSON object"),
}


@pytest.mark.parametrize("raw, line", BAD.values(), ids=BAD.keys())
def test_bad_value_is_named_with_file_and_key(raw, line):
    assert f"{SOURCE} {line}" in refused(raw)


def test_every_problem_comes_in_one_error():
    raw = nested({"num_attention_heads": 0, "rms_norm_eps": -1e-6, "sliding_window": None},
                 {"patch_size": True}, mm_tokens_per_image="256")
    message = refused(raw)
    assert message.startswith(f"{SOURCE} has 5 problems:\n")
    for line in ("text_config.num_attention_heads: 0", "text_config.rms_norm_eps: -1e-06",
                 "text_config.sliding_window: null", "vision_config.patch_size: true",
                 'mm_tokens_per_image: "256"'):
        assert f"\n  {SOURCE} {line}; expected" in message


# Type errors transformers' strict configs raise too (checked below against transformers itself).
STRICT = {"rms_norm_eps": 1, "query_pre_attn_scalar": 256.0, "num_attention_heads": True,
          "eos_token_id": ["1"], "layer_types": "sliding_attention", "tie_word_embeddings": 0,
          "sliding_window": 1.5, "final_logit_softcapping": 30, "initializer_range": "0.02"}


@pytest.mark.parametrize("key, value", STRICT.items(), ids=STRICT.keys())
def test_what_transformers_refuses_we_refuse(key, value):
    from transformers import Gemma3TextConfig

    raw = {k: v for k, v in flat(**{key: value}).items() if k != "sliding_window_pattern"}
    with pytest.raises(Exception, match=key):
        Gemma3TextConfig(**{k: v for k, v in raw.items() if k != "model_type"})
    assert f"{SOURCE} {key}: {json.dumps(value)}; expected" in refused(raw)


# Values transformers 5.24 loads and runs with that no hub config uses: we load them too.
ACCEPTED = {
    "no eos": (flat(eos_token_id=None), lambda c: c.eos_token_ids == ()),
    "empty eos list": (flat(eos_token_id=[]), lambda c: c.eos_token_ids == ()),
    "null pad": (flat(pad_token_id=None), lambda c: c.text.pad_token_id == 0),
    "null bos": (flat(bos_token_id=None), lambda c: c.text.bos_token_id == 2),
    "null bidirectional": (flat(use_bidirectional_attention=None), lambda c: True),
    "integer theta": (flat(rope_theta=1_000_000), lambda c: c.text.rope_global.theta == 1e6),
    "integer factor": (nested({"rope_scaling": {"rope_type": "linear", "factor": 8}}),
                       lambda c: c.text.rope_global.linear_factor == 8.0),
    "eps zero": (flat(rms_norm_eps=0.0), lambda c: c.text.rms_norm_eps == 0.0),
    "vision head": (nested(vision={"vision_use_head": True}), lambda c: c.multimodal),
}


@pytest.mark.parametrize("raw, holds", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_transformers_loads_we_load(raw, holds):
    from transformers import Gemma3Config as HFGemma3Config
    from transformers import Gemma3TextConfig

    cls = HFGemma3Config if raw["model_type"] == "gemma3" else Gemma3TextConfig
    cls(**{k: v for k, v in raw.items() if k != "model_type"})  # transformers accepts it
    assert holds(Gemma3Config.from_hf_config(raw, source=SOURCE))


@pytest.mark.parametrize("size", ["270m", "1b", "4b", "12b", "27b"])
def test_every_hub_config_still_loads(size):
    assert Gemma3Config.from_hf_config(hub_config(size), source=SOURCE) == gemma3.Gemma3Config.for_size(size)


def test_config_is_refused_before_any_weight_is_read(tmp_path):
    # No weight files at all: the config's problem is what the user hears about.
    (tmp_path / "config.json").write_text(json.dumps(flat(num_attention_heads=-4)))
    with pytest.raises(ConfigError, match=f"{tmp_path}/config.json num_attention_heads: -4; "
                                          "expected a positive integer"):
        gemma3.from_pretrained(tmp_path)


def test_config_that_is_not_utf8(tmp_path):
    (tmp_path / "config.json").write_bytes(b'{"model_type": "gemma3_text", "x": "\xff"}')
    with pytest.raises(CheckpointError, match=r"config.json is not UTF-8 text \(byte 36: b'\\xff'\)"):
        gemma3.from_pretrained(tmp_path)


def test_config_that_is_not_an_object(tmp_path):
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(ConfigError, match=f"{tmp_path}/config.json holds a JSON array; expected a "
                                          "JSON object"):
        gemma3.from_pretrained(tmp_path)


def test_problems_of_text_and_vision_towers_come_together():
    message = refused(nested({"head_dim": 0}, mm_tokens_per_image=250))
    assert f"{SOURCE} has 2 problems:" in message
    assert "text_config.head_dim: 0" in message and "mm_tokens_per_image: 250" in message
