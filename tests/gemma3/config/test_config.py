"""Configs: the factories against the hub's config.json files, every config.json format, and
parameter counts of every released size without allocating memory."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from gemma3.config import GLOBAL, SLIDING, ConfigError, Gemma3Config
from gemma3.nn.model import TextDecoder
from harness.checkpoints.synthetic import HUB_CONFIGS  # the hub's config.json of each size

SIZES = ["270m", "1b", "4b", "12b", "27b"]
# Facts sheet 1.2, counted by transformers on the meta device.
TEXT_PARAMS = {"270m": 268_098_176, "1b": 999_885_952, "4b": 3_880_263_168,
               "12b": 11_766_034_176, "27b": 27_009_346_304}
TOTAL_PARAMS = {"270m": 268_098_176, "1b": 999_885_952, "4b": 4_300_079_472,
                "12b": 12_187_325_040, "27b": 27_432_406_640}


def hub_config(size: str) -> dict:
    return json.loads((HUB_CONFIGS / f"gemma-3-{size}.json").read_text())


@pytest.mark.parametrize("size", SIZES)
def test_factory_equals_hub_config(size):
    assert Gemma3Config.from_hf_config(hub_config(size)) == Gemma3Config.for_size(size)


def test_27b_quirks():
    text = Gemma3Config.gemma3_27b().text
    assert text.head_dim == 128
    assert text.attention_scale == pytest.approx(168**-0.5)  # not 128**-0.5
    assert text.global_layers == tuple(range(5, 62, 6))


@pytest.mark.parametrize("size", SIZES)
def test_closed_form_parameter_count(size):
    assert Gemma3Config.for_size(size).num_params() == TOTAL_PARAMS[size]


@pytest.mark.parametrize("size", SIZES)
def test_text_decoder_shapes_match_parameter_count(size):
    cfg = Gemma3Config.for_size(size).text
    abstract = nnx.eval_shape(lambda: TextDecoder(cfg, dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
    count = sum(leaf.size for leaf in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    assert count == TEXT_PARAMS[size]


def v5_form(raw: dict) -> dict:
    """What transformers 5.x writes for the same model."""
    from transformers import Gemma3Config as HFConfig
    from transformers import Gemma3TextConfig

    cls = HFConfig if raw["model_type"] == "gemma3" else Gemma3TextConfig
    return json.loads(json.dumps(cls(**raw).to_dict()))


def intermediate_form(raw: dict) -> dict:
    """~4.57: rope_parameters per layer type without thetas, thetas at the top, layer_types."""
    text = dict(raw["text_config"])
    scaling = text.pop("rope_scaling")
    text.update(
        rope_parameters={"full_attention": scaling, "sliding_attention": {"rope_type": "default"}},
        rope_theta=1_000_000.0, rope_local_base_freq=10_000.0,
        layer_types=[SLIDING if (i + 1) % 6 else GLOBAL for i in range(text["num_hidden_layers"])],
    )
    return {**raw, "text_config": text}


@pytest.mark.parametrize("size", SIZES)
def test_v5_format_reads_the_same(size):
    assert Gemma3Config.from_hf_config(v5_form(hub_config(size))) == Gemma3Config.for_size(size)


@pytest.mark.parametrize("size", ["4b", "12b", "27b"])
def test_intermediate_format_reads_the_same(size):
    assert Gemma3Config.from_hf_config(intermediate_form(hub_config(size))) == Gemma3Config.for_size(size)


def test_legacy_rope_scaling_type_key_keeps_the_factor():
    raw = hub_config("4b")
    raw["text_config"]["rope_scaling"] = {"type": "linear", "factor": 8.0}
    assert Gemma3Config.from_hf_config(raw).text.rope_global.linear_factor == 8.0


@pytest.mark.parametrize("key", ["sliding_window_pattern", "_sliding_window_pattern"])
def test_either_spelling_of_the_window_pattern(key):
    raw = hub_config("1b")
    del raw["sliding_window_pattern"]
    raw[key] = 4
    assert Gemma3Config.from_hf_config(raw).text.global_layers == (3, 7, 11, 15, 19, 23)


def test_disagreeing_window_patterns_are_an_error():
    raw = {**hub_config("1b"), "_sliding_window_pattern": 4}
    with pytest.raises(ConfigError, match="disagreeing"):
        Gemma3Config.from_hf_config(raw)


def test_layer_types_win_over_the_pattern():
    raw = hub_config("270m")
    raw["layer_types"] = [GLOBAL] * 18
    assert len(Gemma3Config.from_hf_config(raw).text.global_layers) == 18


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_type": "llama"}, "model_type 'llama'; expected 'gemma3' or 'gemma3_text'"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 2.0}}, "rope_type 'yarn'"),
        ({"hidden_activation": "gelu"}, "hidden_activation='gelu'"),
        ({"tie_word_embeddings": False}, "tie_word_embeddings=False"),
        ({"layer_types": [GLOBAL]}, "1 layer_types for num_hidden_layers=26"),
    ],
)
def test_unsupported_configs_are_refused_with_the_reason(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Gemma3Config.from_hf_config({**hub_config("1b"), **change})


def test_text_only_view_of_a_multimodal_config():
    cfg = dataclasses.replace(Gemma3Config.gemma3_4b(), vision=None)
    assert not cfg.multimodal and cfg.num_params() == TEXT_PARAMS["4b"]
