"""from_pretrained: every key layout, shards, and a clear error for each kind of bad input."""

from __future__ import annotations

import gc
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import gemma3
from gemma3.ckpt.errors import CheckpointError, LoadError
from gemma3.config import ConfigError
from tests.support.tiny import TEXT_CONFIG, random_ids, save_text_model

VISION = {"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1,
          "num_attention_heads": 2, "image_size": 14, "patch_size": 7,
          "model_type": "siglip_vision_model", "vision_use_head": False}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny checkpoint in the 1b layout, and its reference logits."""
    directory = tmp_path_factory.mktemp("source")
    model = save_text_model(directory, seed=4)
    ids = random_ids((1, 9), TEXT_CONFIG["vocab_size"], seed=4)
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits.numpy()
    return directory, ids, logits


@pytest.fixture
def ckpt(source, tmp_path):
    directory = tmp_path / "ckpt"
    shutil.copytree(source[0], directory)
    return directory


def tensors(directory):
    return load_file(directory / "model.safetensors")


def rewrite(directory, new_tensors):
    save_file(new_tensors, directory / "model.safetensors", metadata={"format": "pt"})


def as_multimodal(directory, prefix):
    """Re-key a text checkpoint the way 4b+ checkpoints store their text tower."""
    raw = json.loads((directory / "config.json").read_text())
    config = {"model_type": "gemma3", "text_config": raw, "vision_config": VISION,
              "mm_tokens_per_image": 1, "eos_token_id": [1, 106]}
    (directory / "config.json").write_text(json.dumps(config))
    rewrite(directory, {prefix + k[len("model."):]: v for k, v in tensors(directory).items()})


def assert_same_logits(directory, source, **kwargs):
    _, ids, expected = source
    out = np.asarray(gemma3.from_pretrained(directory, dtype="float32", **kwargs)(ids))
    assert np.abs(out - expected).max() < 5e-6 * np.abs(expected).max()  # fp32 parity bound


def test_text_layout(ckpt, source):
    assert_same_logits(ckpt, source)


@pytest.mark.parametrize("prefix", ["language_model.model.", "model.language_model."])
def test_text_tower_of_multimodal_layouts(ckpt, source, prefix):
    as_multimodal(ckpt, prefix)
    assert_same_logits(ckpt, source, text_only=True)


def test_sharded_checkpoint(source, tmp_path):
    from transformers import Gemma3ForCausalLM

    model = Gemma3ForCausalLM.from_pretrained(source[0])
    model.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / "model.safetensors.index.json").exists()
    assert_same_logits(tmp_path, source)


def test_stored_lm_head_equal_to_embedding_is_accepted(ckpt, source):
    t = tensors(ckpt)
    rewrite(ckpt, {**t, "lm_head.weight": t["model.embed_tokens.weight"].clone()})
    assert_same_logits(ckpt, source)


def test_untied_lm_head_is_refused(ckpt):
    t = tensors(ckpt)
    rewrite(ckpt, {**t, "lm_head.weight": torch.zeros_like(t["model.embed_tokens.weight"])})
    with pytest.raises(LoadError, match="lm_head.weight in model.safetensors differs"):
        gemma3.from_pretrained(ckpt)


def test_every_mismatch_is_reported_at_once(ckpt):
    t = tensors(ckpt)
    del t["model.layers.3.mlp.up_proj.weight"]
    t["model.layers.9.mlp.up_proj.weight"] = torch.zeros(1)
    t["model.layers.0.self_attn.q_proj.weight"] = torch.zeros(7, 72)
    rewrite(ckpt, t)
    with pytest.raises(LoadError) as e:
        gemma3.from_pretrained(ckpt)
    message = str(e.value)
    assert "3 problem(s)" in message
    assert "missing tensor for language_model.layers.3.mlp.up_proj.kernel" in message
    assert "unexpected tensor model.layers.9.mlp.up_proj.weight in model.safetensors" in message
    assert ("model.layers.0.self_attn.q_proj.weight in model.safetensors has shape [7, 72]; "
            "the config expects [120, 72]") in message


def test_missing_config(ckpt):
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json in .*ckpt"):
        gemma3.from_pretrained(ckpt)


def test_unknown_model_type(ckpt):
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="config.json has model_type 'llama'"):
        gemma3.from_pretrained(ckpt)


def test_missing_shard(ckpt):
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(CheckpointError, match="missing from .*: model-00002-of-00002"):
        gemma3.from_pretrained(ckpt)


def test_truncated_file(ckpt):
    path = ckpt / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors: tensor .* truncated or corrupt"):
        gemma3.from_pretrained(ckpt)


@pytest.mark.parametrize("garbage", [b"\x01\x02", b"\xff" * 64, (20).to_bytes(8, "little") + b"{" * 40])
def test_corrupt_header(ckpt, garbage):
    (ckpt / "model.safetensors").write_bytes(garbage)
    with pytest.raises(CheckpointError, match="model.safetensors (is truncated|is corrupt|has a corrupt header)"):
        gemma3.from_pretrained(ckpt)


def test_float16_is_refused(ckpt):
    with pytest.raises(ValueError, match="float16 is not supported: Gemma 3 activations overflow"):
        gemma3.from_pretrained(ckpt, dtype="float16")


def test_not_a_directory_nor_hub_id(tmp_path):
    with pytest.raises(CheckpointError, match="is not a checkpoint directory, nor a hub id"):
        gemma3.from_pretrained(tmp_path / "nowhere" / "deep" / "x")


def test_unreachable_hub_id(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no network, and an empty cache:
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match="(?s)could not fetch 'google/gemma-3-1b-it'.*HF_TOKEN"):
        gemma3.from_pretrained("google/gemma-3-1b-it")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_abstract_model_has_the_parameters_nnx_rngs_gives(dtype):
    """The loader's abstract model (weights drawn from one fixed key, no nnx.Rngs counter)
    has the same parameters, shapes and dtypes as the model built with nnx.Rngs, vision tower
    and projector included."""
    import jax.numpy as jnp
    from flax import nnx

    from gemma3.ckpt.loading import abstract_params
    from gemma3.config import Gemma3Config
    from gemma3.nn.model import Gemma3

    config = Gemma3Config.from_hf_config({"model_type": "gemma3", "text_config": TEXT_CONFIG,
                                          "vision_config": VISION, "mm_tokens_per_image": 1})
    _, _, ours = abstract_params(config, jnp.dtype(dtype))
    reference = nnx.eval_shape(lambda: Gemma3(config, dtype=jnp.dtype(dtype),
                                              rngs=nnx.Rngs(0)))
    expected = dict(nnx.to_flat_state(nnx.split(reference)[1]))
    assert any("vision_tower" in "/".join(map(str, k)) for k in expected)
    assert {k: (v.shape, v.dtype) for k, v in ours.items()} == {
        k: (v.shape, v.dtype) for k, v in expected.items()}



def test_cyclic_gc_is_off_during_a_load_and_as_it_was_after(ckpt, monkeypatch):
    from gemma3.ckpt import loading

    during = []
    abstract_params = loading.abstract_params
    monkeypatch.setattr(loading, "abstract_params",
                        lambda *a: during.append(gc.isenabled()) or abstract_params(*a))
    assert gc.isenabled()
    gemma3.from_pretrained(ckpt, dtype="float32", progress=False)
    assert during == [False] and gc.isenabled()
    (ckpt / "config.json").unlink()
    with pytest.raises(CheckpointError):  # a failed load turns it back on too
        gemma3.from_pretrained(ckpt)
    assert gc.isenabled()
    gc.disable()  # a caller who had it off keeps it off
    try:
        with pytest.raises(CheckpointError):
            gemma3.from_pretrained(ckpt)
        assert not gc.isenabled()
    finally:
        gc.enable()
