"""The image path against transformers: SigLIP tower, projector, merged logits, image masks,
checkpoint layouts, input errors, and the parameter counts of the released sizes.

Every parity check feeds the same pixel_values array to both sides and passes token_type_ids
to both (without them transformers silently falls back to a causal mask).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from transformers import Gemma3ForConditionalGeneration
from transformers.models.gemma3.modeling_gemma3 import (
    create_masks_for_vision_model,
    get_block_sequence_ids_for_mask,
)

import gemma3
from gemma3.config import GLOBAL, SLIDING, Gemma3Config
from gemma3.generation.loop import generate
from gemma3.nn.masks import causal_mask
from gemma3.nn.model import Gemma3
from tests.support.vision_fixtures import (
    IMAGE,
    SLIDING_WINDOW,
    TOKENS_PER_IMAGE,
    hf_model,
    positions,
    random_pixels,
    token_types,
    two_image_batch,
)

# fp32 bounds. Measured max |diff|: vision tower 1.4e-6 (outputs up to 3.5), projector 7e-7
# (up to 2.1), logits 3.0e-6 (up to 3.7); each bound is ~5x that, far below any real mistake
# (a wrong scale, cast or mask moves these by 1e-2 or more).
VISION_TOL, PROJECTOR_TOL, LOGITS_TOL = 1e-5, 5e-6, 2e-5
# bf16 vs transformers in bf16. Measured: vision 0.0156 (1 bf16 ulp at 3.5; LayerNorm, attention
# and MLP are each bit-exact on equal inputs), projector 0.0078, logits 0.070 (mostly the text
# decoder; transformers bf16 itself is 0.062 away from its fp32). Bounds ~3x, still well under
# a real bug's effect.
BF16_VISION_TOL, BF16_PROJECTOR_TOL, BF16_LOGITS_TOL = 0.05, 0.03, 0.25


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The fp32 transformers model and its fresh save (vision keys as `vision_tower.*`)."""
    model = hf_model()
    directory = tmp_path_factory.mktemp("gemma3-mm-fresh")
    model.save_pretrained(directory)
    return model, directory


@pytest.fixture(scope="module")
def ours(reference):
    return gemma3.from_pretrained(reference[1], dtype="float32")


@pytest.fixture(scope="module")
def inputs():
    ids, mask = two_image_batch()
    return ids, mask, token_types(ids), random_pixels(3)


def run_reference(model, ids, mask, tt, pixels):
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    pixel_values=torch.from_numpy(pixels), token_type_ids=torch.from_numpy(tt),
                    position_ids=torch.from_numpy(positions(mask)), use_cache=False)
    return out.logits.float().numpy()


def max_diff(a, b, where=None) -> float:
    d = np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32))
    return float(d[where].max() if where is not None else d.max())


def test_vision_tower_and_projector_match_transformers(reference, ours, inputs):
    model, pixels = reference[0], inputs[3]
    with torch.no_grad():
        patches = model.model.vision_tower(pixel_values=torch.from_numpy(pixels)).last_hidden_state
        soft = model.model.multi_modal_projector(patches)
    our_patches = ours.vision_tower(pixels)
    assert our_patches.shape == (3, 64, 32)
    assert max_diff(our_patches, patches.numpy()) < VISION_TOL
    our_soft = ours.multi_modal_projector(our_patches)
    assert our_soft.shape == (3, TOKENS_PER_IMAGE, 64)
    assert max_diff(our_soft, soft.numpy()) < PROJECTOR_TOL


def test_logits_with_three_images_match_transformers(reference, ours, inputs):
    """Two rows: two images, then one image after left padding (images fill blocks in order)."""
    ids, mask, tt, pixels = inputs
    expected = run_reference(reference[0], ids, mask, tt, pixels)
    got = ours(ids, mask, pixel_values=pixels, token_type_ids=tt)
    assert max_diff(got, expected, mask > 0) < LOGITS_TOL
    # token_type_ids derived from the image token id give the same result.
    derived = ours(ids, mask, pixel_values=pixels)
    assert max_diff(derived, got, mask > 0) == 0.0


def test_image_masks_match_transformers(reference, ours, inputs):
    ids, mask, tt, _ = inputs
    t = ids.shape[1]
    text_config = reference[0].config.get_text_config()
    hf_masks = create_masks_for_vision_model(
        config=text_config, inputs_embeds=torch.zeros(2, t, 64), attention_mask=torch.from_numpy(mask),
        cache=None, position_ids=torch.from_numpy(positions(mask)),
        block_sequence_ids=get_block_sequence_ids_for_mask(torch.from_numpy(tt)))
    blocks = ours.image_blocks(jnp.asarray(ids), jnp.asarray(tt))
    index, valid = jnp.arange(t), jnp.asarray(mask > 0)
    ours_masks = {GLOBAL: causal_mask(index, index, valid, None, blocks, blocks),
                  SLIDING: causal_mask(index, index, valid, SLIDING_WINDOW, blocks, blocks)}
    rows = mask > 0  # fully padded query rows are garbage on both sides
    for layer_type, ours_mask in ours_masks.items():
        allowed = (hf_masks[layer_type][:, 0] == 0).numpy()
        np.testing.assert_array_equal(np.asarray(ours_mask)[rows], allowed[rows])

    # The rule itself, on row 0 (image 1 then image 2).
    first, second = (np.flatnonzero(ids[0] == IMAGE)[i::TOKENS_PER_IMAGE]
                     for i in (0, TOKENS_PER_IMAGE - 1))
    img1, img2 = np.arange(first[0], second[0] + 1), np.arange(first[1], second[1] + 1)
    full, sliding = np.asarray(ours_masks[GLOBAL][0]), np.asarray(ours_masks[SLIDING][0])
    assert full[np.ix_(img1, img1)].all()  # one image sees all of itself, both ways
    assert not full[np.ix_(img1, img2)].any() and not sliding[np.ix_(img1, img2)].any()
    assert full[np.ix_(img2, img1)].all()  # a later image sees the earlier one causally
    q, k = np.meshgrid(img1, img1, indexing="ij")  # sliding: future in-block keys stay visible,
    np.testing.assert_array_equal(sliding[np.ix_(img1, img1)], k > q - SLIDING_WINDOW)  # left side windowed
    text = np.flatnonzero(tt[0] == 0)
    np.testing.assert_array_equal(full[np.ix_(text, text)], text[None, :] <= text[:, None])


def test_later_image_does_not_change_earlier_positions(ours, inputs):
    """Behaviour on top of parity: new pixels for image 2 change logits inside image 2 and
    after it, never at image 1 or before it; the other row is untouched."""
    ids, mask, tt, pixels = inputs
    base = np.asarray(ours(ids, mask, pixel_values=pixels, token_type_ids=tt))
    changed = pixels.copy()
    changed[1] = random_pixels(1, seed=7)[0]
    moved = np.abs(np.asarray(ours(ids, mask, pixel_values=changed, token_type_ids=tt)) - base)
    moved = moved.max(axis=-1)
    image_positions = np.flatnonzero(ids[0] == IMAGE)
    img1, img2 = image_positions[:TOKENS_PER_IMAGE], image_positions[TOKENS_PER_IMAGE:]
    assert moved[0, : img2[0]].max() == 0.0  # everything before image 2, image 1 included
    assert moved[0, img1].max() == 0.0
    assert (moved[0, img2] > 1e-3).all()  # every token of image 2, its first one included
    assert (moved[0, img2[-1] + 1:] > 1e-3).all()
    assert moved[1].max() == 0.0


def test_bf16_close_to_transformers_bf16(reference, inputs):
    """bf16 is not bit-exact (the text decoder accumulates differently); see the bounds above."""
    ids, mask, tt, pixels = inputs
    model = copy.deepcopy(reference[0]).to(torch.bfloat16)
    ours16 = gemma3.from_pretrained(reference[1], dtype="bfloat16")
    with torch.no_grad():
        patches = model.model.vision_tower(pixel_values=torch.from_numpy(pixels)).last_hidden_state
        soft = model.model.multi_modal_projector(patches)
    our_patches = ours16.vision_tower(pixels)
    assert our_patches.dtype == jnp.bfloat16
    assert max_diff(our_patches, patches.float().numpy()) < BF16_VISION_TOL
    assert max_diff(ours16.multi_modal_projector(our_patches), soft.float().numpy()) \
        < BF16_PROJECTOR_TOL
    expected = run_reference(model, ids, mask, tt, pixels)
    got = ours16(ids, mask, pixel_values=pixels, token_type_ids=tt)
    assert max_diff(got, expected, mask > 0) < BF16_LOGITS_TOL


# ------------------------------------------------------------------------------------------------
# Loading


def stored_vision_prefix(directory) -> str:
    with safe_open(str(directory / "model.safetensors"), "np") as f:
        names = [n for n in f.keys() if "patch_embedding.weight" in n]  # noqa: SIM118
    assert len(names) == 1
    return names[0].removesuffix("embeddings.patch_embedding.weight")


@pytest.fixture(scope="module")
def layouts(reference, tmp_path_factory):
    """The three vision key layouts transformers writes, each checked by reading its keys."""
    model, fresh = reference
    # The released hub layout (`vision_tower.vision_model.*`): transformers writes it only for a
    # model it loaded from such a file, so rename the fresh save's keys to get it.
    hub = tmp_path_factory.mktemp("gemma3-mm-hub")
    shutil.copy(fresh / "config.json", hub / "config.json")
    tensors = load_file(fresh / "model.safetensors")
    save_file({k.replace("vision_tower.", "vision_tower.vision_model.", 1): v
               for k, v in tensors.items()}, hub / "model.safetensors", metadata={"format": "pt"})
    assert Gemma3ForConditionalGeneration.from_pretrained(hub).state_dict().keys() \
        == model.state_dict().keys()  # transformers reads it as the same model
    v5 = tmp_path_factory.mktemp("gemma3-mm-v5")
    model.save_pretrained(v5, save_original_format=False)
    found = {name: stored_vision_prefix(d) for name, d in
             (("fresh", fresh), ("hub", hub), ("v5", v5))}
    assert found == {"fresh": "vision_tower.", "hub": "vision_tower.vision_model.",
                     "v5": "model.vision_tower."}
    return {"fresh": fresh, "hub": hub, "v5": v5}


def flat_params(model) -> dict:
    return {path: np.asarray(v[...]) for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


@pytest.mark.parametrize("layout", ["hub", "v5"])
def test_every_vision_layout_loads_the_same_weights(layouts, ours, layout):
    loaded = flat_params(gemma3.from_pretrained(layouts[layout], dtype="float32"))
    expected = flat_params(ours)  # from the fresh layout
    assert loaded.keys() == expected.keys()
    assert any(p[0] == "vision_tower" for p in loaded)
    for path, value in expected.items():
        np.testing.assert_array_equal(loaded[path], value, err_msg=str(path))


def test_text_only_loads_the_decoder_alone(reference, ours, inputs):
    text_model = gemma3.from_pretrained(reference[1], dtype="float32", text_only=True)
    assert not hasattr(text_model, "vision_tower")
    assert not hasattr(text_model, "multi_modal_projector")
    assert text_model.config.vision is None
    ids, mask = inputs[0], inputs[1]
    text_ids = np.where(ids == IMAGE, 5, ids)  # no image tokens: plain text
    assert max_diff(text_model(text_ids, mask), ours(text_ids, mask), mask > 0) == 0.0
    with pytest.raises(ValueError, match="no vision tower.*text_only=True"):
        text_model(ids, mask, pixel_values=inputs[3])


# ------------------------------------------------------------------------------------------------
# Bad input


def test_image_count_must_match_the_blocks(ours, inputs):
    ids, mask, tt, pixels = inputs
    with pytest.raises(ValueError, match=r"holds 2 image\(s\), but input_ids has 3 block\(s\)"):
        ours(ids, mask, pixel_values=pixels[:2], token_type_ids=tt)
    short = ids.copy()
    short[0, np.flatnonzero(ids[0] == IMAGE)[0]] = 5  # image 1 loses one token
    with pytest.raises(ValueError, match=rf"lengths \[{TOKENS_PER_IMAGE - 1}, "
                                         rf"{TOKENS_PER_IMAGE}, {TOKENS_PER_IMAGE}\].*expected 3"):
        ours(short, mask, pixel_values=pixels)


def test_generate_checks_the_image_count_too(ours, inputs):
    ids, mask, tt, pixels = inputs
    with pytest.raises(ValueError, match=r"holds 2 image\(s\), but input_ids has 3 block\(s\)"):
        generate(ours, ids, mask, max_new_tokens=2, pixel_values=pixels[:2], token_type_ids=tt)


def test_wrong_pixel_shape_says_what_is_expected(ours, inputs):
    ids, mask, tt, pixels = inputs
    nhwc = pixels.transpose(0, 2, 3, 1)
    with pytest.raises(ValueError, match=r"shape \[3, 56, 56, 3\]; expected \[I, 3, 56, 56\]"):
        ours(ids, mask, pixel_values=nhwc, token_type_ids=tt)
    with pytest.raises(ValueError, match=r"shape \[3, 56, 56\]"):
        ours(ids, mask, pixel_values=pixels[:, 0])


def test_token_type_ids_must_mark_the_image_tokens(ours, inputs):
    ids, mask, tt, pixels = inputs
    with pytest.raises(ValueError, match="token_type_ids .* must be 1 exactly at the 48 image"):
        ours(ids, mask, pixel_values=pixels, token_type_ids=np.zeros_like(tt))


def test_images_given_to_a_text_only_config_are_refused(reference):
    config = json.loads((reference[1] / "config.json").read_text())
    cfg = dataclasses.replace(Gemma3Config.from_hf_config(config), vision=None)
    # Shapes suffice: the check runs before any computation.
    text_only = nnx.eval_shape(lambda: Gemma3(cfg, dtype=jnp.float32, rngs=nnx.Rngs(0)))
    ids, _ = two_image_batch()
    with pytest.raises(ValueError, match="no vision tower.*without text_only=True"):
        text_only(ids, pixel_values=random_pixels(3))


# ------------------------------------------------------------------------------------------------
# Released sizes, shapes only (nothing allocated)


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("size,total", [("4b", 4_300_079_472), ("12b", 12_187_325_040),
                                        ("27b", 27_432_406_640)])
def test_released_multimodal_sizes_have_the_published_parameter_counts(size, total):
    cfg = gemma3.Gemma3Config.for_size(size)
    model = nnx.eval_shape(lambda: Gemma3(cfg, dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))
    params = nnx.state(model, nnx.Param)
    assert count(params) == total == cfg.num_params()
    assert count(nnx.state(model.vision_tower, nnx.Param)) == 416_866_032
    projector = nnx.state(model.multi_modal_projector, nnx.Param)
    assert count(projector) == 1152 * (cfg.text.hidden_size + 1)
    layer = model.vision_tower.encoder.layers[0]
    assert len(model.vision_tower.encoder.layers) == 27
    assert layer.self_attn.q_proj.kernel.shape == (16, 72, 1152)  # [N, H, C], torch order
    assert model.vision_tower.embeddings.patch_embedding.kernel.shape == (14, 14, 3, 1152)
    assert model.vision_tower.embeddings.position_embedding.weight.shape == (4096, 1152)
    assert model.multi_modal_projector.mm_input_projection_weight.shape == (
        1152, cfg.text.hidden_size)
    assert model.multi_modal_projector.kernel == 4  # 64x64 patches pooled to 16x16 = 256 tokens


# ------------------------------------------------------------------------------------------------
# Generation


def test_greedy_generation_with_images_matches_transformers(reference, ours, inputs):
    """The bidirectional image mask in the prefill, causal decode steps over the cache."""
    ids, mask, tt, pixels = inputs
    with torch.no_grad():
        expected = reference[0].generate(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
            pixel_values=torch.from_numpy(pixels), token_type_ids=torch.from_numpy(tt),
            max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=0)
    got = generate(ours, ids, mask, max_new_tokens=8, pixel_values=pixels, token_type_ids=tt,
                   stop_ids=[])
    np.testing.assert_array_equal(got, expected[:, ids.shape[1]:].numpy())
