"""The synthetic checkpoint writer: hub layout that transformers and gemma3 both load with every
key matched, safetensors files the safetensors library reads, seeded and cached."""

import json
import struct

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import Gemma3ForCausalLM, Gemma3ForConditionalGeneration

import gemma3
from gemma3.config import Gemma3Config
from harness.checkpoints import layout, registry, synthetic

TEXT = {
    "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "vocab_size": 301,
    "hidden_size": 72, "intermediate_size": 136, "num_hidden_layers": 7,
    "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 20,
    "query_pre_attn_scalar": 30, "sliding_window": 5, "sliding_window_pattern": 6,
    "max_position_embeddings": 256, "rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0,
    "rope_scaling": None, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
    "torch_dtype": "bfloat16",
}
MULTIMODAL = {
    "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
    "boi_token_index": 300, "eoi_token_index": 301, "image_token_index": 320,
    "mm_tokens_per_image": 4, "eos_token_id": [1, 106], "torch_dtype": "bfloat16",
    "text_config": {"model_type": "gemma3_text", "vocab_size": 330, "hidden_size": 64,
                    "intermediate_size": 96, "num_hidden_layers": 7, "num_attention_heads": 4,
                    "num_key_value_heads": 2, "head_dim": 16, "sliding_window": 6,
                    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}},
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32,
                      "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                      "image_size": 28, "patch_size": 7, "vision_use_head": False},
}


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("synthetic-text")
    synthetic.write_checkpoint(registry.get("gemma-3-1b-it"), directory, 3, config=TEXT)
    return directory


@pytest.fixture(scope="module")
def multimodal_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("synthetic-mm")  # the 4b layout: two shards + index
    synthetic.write_checkpoint(registry.get("gemma-3-4b-it"), directory, 3, config=MULTIMODAL)
    return directory


def _loading_info(cls, directory):
    _, info = cls.from_pretrained(directory, output_loading_info=True, dtype=torch.float32)
    return {k: sorted(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys",
                                                           "mismatched_keys")}


def test_transformers_loads_the_text_layout_with_every_key_matched(text_dir):
    info = _loading_info(Gemma3ForCausalLM, text_dir)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}


def test_transformers_loads_the_sharded_multimodal_layout(multimodal_dir):
    info = _loading_info(Gemma3ForConditionalGeneration, multimodal_dir)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    index = json.loads((multimodal_dir / registry.INDEX_FILE).read_text())
    sizes = sum((multimodal_dir / f).stat().st_size for f in set(index["weight_map"].values()))
    assert set(index["weight_map"].values()) == {"model-00001-of-00002.safetensors",
                                                 "model-00002-of-00002.safetensors"}
    assert 0 < index["metadata"]["total_size"] < sizes  # data bytes, without the headers


def test_gemma3_loads_both_layouts(text_dir, multimodal_dir):
    # from_pretrained checks the map as a bijection; a missing or extra tensor raises.
    assert gemma3.from_pretrained(text_dir, dtype="float32").config.text.hidden_size == 72
    assert gemma3.from_pretrained(multimodal_dir, dtype="float32").config.vision is not None


def test_files_are_valid_safetensors_with_seeded_values(text_dir):
    path = text_dir / "model.safetensors"
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        assert length % 8 == 0  # header padded like the safetensors library pads it
        assert json.loads(f.read(length))["__metadata__"] == {"format": "pt"}
    plan = {t.name: t for t in layout.plan(registry.get("gemma-3-1b-it"), Gemma3Config.from_hf_config(TEXT))}
    with safe_open(path, "pt") as f:
        assert sorted(f.keys()) == sorted(plan)
        name = "model.layers.3.mlp.up_proj.weight"
        stored = f.get_tensor(name)
    assert stored.dtype == torch.bfloat16 and tuple(stored.shape) == plan[name].shape
    expected = np.concatenate(list(synthetic.tensor_chunks(3, "gemma-3-1b-it", plan[name]))).astype(np.float32)
    np.testing.assert_array_equal(stored.float().numpy().reshape(-1), expected)


def test_value_laws_give_the_confidence_recipe():
    assert synthetic.value_law("model.norm.weight", (72,))[0] == pytest.approx(
        synthetic.CONFIDENCE / synthetic.EMBED_RMS - 1)
    assert synthetic.value_law("model.layers.0.post_attention_layernorm.weight", (72,))[0] == (
        synthetic.POST_NORM_GAIN - 1)
    assert synthetic.value_law("model.layers.0.mlp.down_proj.weight", (72, 136))[1] == (
        pytest.approx(136**-0.5))
    assert synthetic.value_law("multi_modal_projector.mm_input_projection_weight",
                               (1152, 64))[1] == pytest.approx(1152**-0.5)


def test_hub_config_per_variant():
    assert synthetic.hub_config(registry.get("gemma-3-270m"))["eos_token_id"] == 1
    assert synthetic.hub_config(registry.get("gemma-3-270m-it"))["eos_token_id"] == [1, 106]
    assert synthetic.hub_config(registry.get("gemma-3-12b-pt"))["text_config"][
        "num_hidden_layers"] == 48


def test_checkpoints_are_cached_by_model_seed_and_writer_version(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(synthetic, "write_checkpoint",
                        lambda spec, d, seed, progress=None: calls.append(d))
    spec = registry.get("gemma-3-270m")
    first = synthetic.ensure_checkpoint(spec, 5, tmp_path)
    again = synthetic.ensure_checkpoint(spec, 5, tmp_path)
    assert first == again == tmp_path / "checkpoints" / (
        f"gemma-3-270m-seed5-w{synthetic.WRITER_VERSION}")
    assert len(calls) == 1 and (first / synthetic.DONE).exists()
    monkeypatch.setenv("GEMMA3_HARNESS_CACHE", str(tmp_path / "env"))
    assert synthetic.cache_root() == tmp_path / "env"


def test_a_failed_write_leaves_no_checkpoint(tmp_path, monkeypatch):
    def boom(spec, directory, seed, progress=None):
        (directory / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(synthetic, "write_checkpoint", boom)
    with pytest.raises(OSError):
        synthetic.ensure_checkpoint(registry.get("gemma-3-270m"), 0, tmp_path)
    assert list((tmp_path / "checkpoints").iterdir()) == []
