"""GGUF metadata -> Gemma3Config for every released size, and the refusals."""

from __future__ import annotations

import dataclasses

import gguf
import numpy as np
import pytest

from gemma3.ckpt import gguf as gguf_checkpoint
from gemma3.ckpt.gguf.config import GGUFConfigError, config_from_metadata
from gemma3.config import GLOBAL, SLIDING, Gemma3Config, RopeConfig
from tests.support.gguf_fixtures import finish, tiny_vocabulary, write_metadata

SIZES = ("270m", "1b", "4b", "12b", "27b")
GGUF_VOCAB = 262_144  # llama.cpp keeps the tokenizer's rows only (4b+ configs say 262208)


def metadata(size: str) -> dict:
    """What llama.cpp's converter writes for a released size (docs/gemma3-facts.md, GGUF)."""
    t = Gemma3Config.for_size(size).text
    return {
        "general.architecture": "gemma3",
        "gemma3.context_length": t.max_position_embeddings,
        "gemma3.embedding_length": t.hidden_size, "gemma3.block_count": t.num_hidden_layers,
        "gemma3.feed_forward_length": t.intermediate_size,
        "gemma3.attention.head_count": t.num_attention_heads,
        "gemma3.attention.head_count_kv": t.num_key_value_heads,
        "gemma3.attention.key_length": t.head_dim, "gemma3.attention.value_length": t.head_dim,
        "gemma3.attention.layer_norm_rms_epsilon": float(np.float32(1e-6)),
        "gemma3.rope.freq_base": 1_000_000.0, "gemma3.attention.sliding_window": t.sliding_window,
        "tokenizer.ggml.tokens": ["x"] * GGUF_VOCAB,
    }


@pytest.mark.parametrize("size", SIZES)
def test_each_released_size(size):
    released = Gemma3Config.for_size(size)
    config = config_from_metadata(metadata(size), f"{size}.gguf")
    # Text decoder only, the file's vocabulary; everything else (query_pre_attn_scalar 168 for
    # the 27b, the 5:1 pattern, local theta 1e4, RoPE factor 8 for 4b+, eos ids) the release's.
    assert config == Gemma3Config(dataclasses.replace(released.text, vocab_size=GGUF_VOCAB),
                                  vision=None, eos_token_ids=released.eos_token_ids)


def test_metadata_only_file_read_through_the_package(tmp_path):
    path = tmp_path / "270m.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    released = Gemma3Config.gemma3_270m().text
    text = {**dataclasses.asdict(released), "vocab_size": 400,
            "num_hidden_layers": released.num_hidden_layers}
    write_metadata(writer, text, *tiny_vocabulary(400))
    finish(writer)
    config = gguf_checkpoint.read_config(path)
    assert config.text == dataclasses.replace(Gemma3Config.gemma3_270m().text, vocab_size=400)


def test_stated_values_win_over_the_release():
    meta = {**metadata("4b"), "gemma3.rope.scaling.type": "linear",
            "gemma3.rope.scaling.factor": 4.0, "gemma3.rope.freq_base_swa": 20_000.0,
            "gemma3.attention.sliding_window_pattern": [True, False] * 17,
            "gemma3.context_length": 8192}
    text = config_from_metadata(meta, "x.gguf").text
    assert text.rope_global == RopeConfig(1_000_000.0, 4.0)
    assert text.rope_local == RopeConfig(20_000.0)
    assert text.layer_types == (SLIDING, GLOBAL) * 17
    assert text.max_position_embeddings == 8192


@pytest.mark.parametrize("arch", ["gemma3n", "gemma2", "llama", None])
def test_other_architectures_are_refused(arch):
    meta = {**metadata("1b"), "general.architecture": arch}
    with pytest.raises(GGUFConfigError, match=f"m.gguf has general.architecture {arch!r}; "
                                              "expected 'gemma3'"):
        config_from_metadata(meta, "m.gguf")


def test_unknown_size_is_refused_with_its_shapes_and_the_known_ones():
    meta = {**metadata("1b"), "gemma3.block_count": 27}
    with pytest.raises(GGUFConfigError) as error:
        config_from_metadata(meta, "m.gguf")
    message = str(error.value)
    assert "m.gguf describes a Gemma 3 of unknown size" in message
    assert "num_hidden_layers=27" in message and "1b: hidden_size=1152" in message


@pytest.mark.parametrize("change, match", [
    ({"gemma3.attention.key_length": None}, "no metadata key 'gemma3.attention.key_length'"),
    ({"gemma3.attention.value_length": 128}, "value_length 128 != key_length 256"),
    ({"gemma3.rope.scaling.type": "yarn"}, "rope.scaling.type 'yarn'"),
    ({"gemma3.attn_logit_softcapping": 50.0}, "attention logit softcapping"),
])
def test_bad_metadata_is_named(change, match):
    meta = {**metadata("1b"), **change}
    meta = {k: v for k, v in meta.items() if v is not None}
    with pytest.raises(GGUFConfigError, match=match):
        config_from_metadata(meta, "m.gguf")


def test_a_given_base_config_must_match_the_file():
    base = Gemma3Config.gemma3_1b()
    with pytest.raises(GGUFConfigError, match="hidden_size: file 640, config 1152"):
        config_from_metadata(metadata("270m"), "m.gguf", base)
