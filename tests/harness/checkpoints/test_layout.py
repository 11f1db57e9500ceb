"""The harness registry and the hub layout of every released size, computed without writing:
tensor names, shapes, counts, shards and byte totals against docs/gemma3-facts.md (Sizes, Checkpoint layouts).
"""

import json
from collections import Counter

import pytest

from contract.registry import MODELS_JSON
from harness.checkpoints import layout, registry

# Facts sheet 1.2 / 4.1.
TENSORS = {"270m": 236, "1b": 340, "4b": 883, "12b": 1065, "27b": 1247}
TOTAL = {"270m": 536_196_352, "1b": 1_999_771_904, "4b": 8_600_158_944,
         "12b": 24_374_650_080, "27b": 54_864_813_280}
SHARDS = {"270m": 1, "1b": 1, "4b": 2, "12b": 5, "27b": 12}
ONE_PER_SIZE = {m.size: m for m in registry.MODELS}


def test_registry_ids_come_from_matrix_models_json():
    rows = json.loads(MODELS_JSON.read_text())["models"]
    assert [m.id for m in registry.MODELS] == [r["id"] for r in rows]
    assert [m.id for m in registry.select("gemma-3-1b-it,gemma-3-270m")] == [
        "gemma-3-270m", "gemma-3-1b-it"]  # registry order, smallest first


def test_unknown_model_id_names_the_known_ones():
    with pytest.raises(ValueError, match="gemma-3-270m"):
        registry.get("gemma-3-2b")


@pytest.mark.parametrize("size", sorted(TENSORS))
def test_plan_matches_the_hub_inventory(size):
    spec = ONE_PER_SIZE[size]
    tensors = layout.plan(spec)
    assert len(tensors) == TENSORS[size]
    assert len({t.name for t in tensors}) == len(tensors)
    assert layout.total_size(tensors) == TOTAL[size] == spec.hub_bytes
    shards = Counter(t.shard for t in tensors)
    assert sorted(shards) == list(spec.shard_names)  # every shard holds something
    assert len(shards) == SHARDS[size]


def test_shard_names_follow_the_hub_pattern():
    assert registry.get("gemma-3-1b-it").shard_names == ("model.safetensors",)
    assert registry.get("gemma-3-27b-it").shard_names[-1] == "model-00012-of-00012.safetensors"


def test_names_and_shapes_of_the_4b():
    shapes = {t.name: t.shape for t in layout.plan(registry.get("gemma-3-4b-it"))}
    assert shapes["language_model.model.embed_tokens.weight"] == (262_208, 2560)
    assert shapes["language_model.model.layers.33.self_attn.q_proj.weight"] == (2048, 2560)
    assert shapes["language_model.model.layers.0.mlp.down_proj.weight"] == (2560, 10240)
    assert shapes["multi_modal_projector.mm_input_projection_weight"] == (1152, 2560)
    assert shapes["vision_tower.vision_model.embeddings.patch_embedding.weight"] == (
        1152, 3, 14, 14)
    assert shapes["vision_tower.vision_model.encoder.layers.26.mlp.fc1.weight"] == (4304, 1152)
    assert "lm_head.weight" not in shapes  # tied to the embedding


def test_27b_uses_head_dim_128():
    shapes = {t.name: t.shape for t in layout.plan(registry.get("gemma-3-27b-pt"))}
    assert shapes["language_model.model.layers.61.self_attn.k_norm.weight"] == (128,)
    assert shapes["language_model.model.layers.0.self_attn.o_proj.weight"] == (5376, 4096)
