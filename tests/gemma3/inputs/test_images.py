"""Image loading, preprocessing and prompt expansion (gemma3.images)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

from gemma3.config import BOI_ID, EOI_ID, IMAGE_TOKEN_ID, Gemma3Config
from gemma3.inputs.images import (
    NEWLINES_ID,
    expand_image_tokens,
    image_token_type_ids,
    load_image,
    prepare_image_prompt,
    preprocess,
)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [56, 896])
def test_preprocess_matches_the_transformers_pil_processor(size):
    """Same stretch (no crop), bilinear filter, rescale and normalisation, down- and upscaling."""
    images = [random_image(37, 50, seed=1), random_image(300, 120, seed=2)]
    expected = Gemma3ImageProcessorPil(size={"height": size, "width": size})(
        images=[Image.fromarray(i) for i in images], return_tensors="np")["pixel_values"]
    got = preprocess(images, image_size=size)
    assert got.shape == (2, 3, size, size) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_preprocess_range_and_layout():
    image = np.zeros((10, 20, 3), np.uint8)
    image[..., 0] = 255  # pure red
    pixels = preprocess(image, image_size=14)
    assert pixels.shape == (1, 3, 14, 14)
    np.testing.assert_array_equal(pixels[0, 0], 1.0)  # channels first, 255 -> +1
    np.testing.assert_array_equal(pixels[0, 1:], -1.0)  # 0 -> -1


def test_load_image_converts_to_rgb_uint8(tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((6, 9), 128, np.uint8), mode="L").save(grey)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.full((6, 9, 4), 200, np.uint8), mode="RGBA").save(rgba)
    for path in (grey, rgba):
        image = load_image(path)
        assert image.dtype == np.uint8 and image.shape == (6, 9, 3)
    np.testing.assert_array_equal(preprocess(str(grey), 14), preprocess(load_image(grey), 14))


def test_preprocess_rejects_float_arrays():
    with pytest.raises(ValueError, match=r"dtype float32 .* expected uint8 \[H, W, 3\]"):
        preprocess(np.zeros((4, 4, 3), np.float32), image_size=14)


def test_expand_ids_gives_the_processor_block():
    prompt = [2, 105, 7, BOI_ID, 9, BOI_ID, 106]
    out = expand_image_tokens(prompt, mm_tokens_per_image=3)
    block = [NEWLINES_ID, BOI_ID, IMAGE_TOKEN_ID, IMAGE_TOKEN_ID, IMAGE_TOKEN_ID, EOI_ID,
             NEWLINES_ID]
    assert out == [2, 105, 7, *block, 9, *block, 106]
    assert len(expand_image_tokens([BOI_ID])) == 256 + 4  # the real block length
    np.testing.assert_array_equal(image_token_type_ids([out])[0],
                                  [int(t == IMAGE_TOKEN_ID) for t in out])


def test_expand_text_is_the_processor_replacement_and_tokenises_to_the_ids():
    text = "<bos>Describe <start_of_image> please"
    out = expand_image_tokens(text, mm_tokens_per_image=2)
    # Gemma3Processor.full_image_sequence with image_seq_length=2.
    assert out == ("<bos>Describe \n\n<start_of_image><image_soft_token><image_soft_token>"
                   "<end_of_image>\n\n please")
    # Tokenising the pieces the expansion adds gives the id-level expansion.
    vocab = {"<bos>": 2, "Describe ": 7, "\n\n": NEWLINES_ID, "<start_of_image>": BOI_ID,
             "<image_soft_token>": IMAGE_TOKEN_ID, "<end_of_image>": EOI_ID, " please": 9}
    pieces = [p for p in re.split("(" + "|".join(map(re.escape, vocab)) + ")", out) if p]
    assert [vocab[p] for p in pieces] == expand_image_tokens([2, 7, BOI_ID, 9], 2)


def test_prepare_image_prompt_checks_the_counts():
    config = Gemma3Config.gemma3_4b()
    image = random_image(20, 30)
    inputs = prepare_image_prompt([2, BOI_ID, 7], [image], config)
    assert inputs["input_ids"].shape == (1, 3 + 259)
    assert inputs["pixel_values"].shape == (1, 3, 896, 896)
    assert inputs["token_type_ids"].sum() == 256
    with pytest.raises(ValueError, match=r"1 <start_of_image> token\(s\).*2 image\(s\)"):
        prepare_image_prompt([2, BOI_ID, 7], [image, image], config)
    with pytest.raises(ValueError, match="no vision tower"):
        prepare_image_prompt([2, BOI_ID], [image], Gemma3Config.gemma3_1b())


@pytest.mark.parametrize("damage", ["truncated", "not an image", "missing"])
def test_every_image_error_names_the_file(tmp_path, damage):
    from gemma3.config.errors import InputError

    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(path)
    data = path.read_bytes()
    if damage == "truncated":  # PIL reads the header, then runs out of pixel data
        path.write_bytes(data[:len(data) // 2])
    elif damage == "not an image":
        path.write_bytes(b"plain text, not a picture\n")
    else:
        path.unlink()
    with pytest.raises(InputError) as refused:
        load_image(path)
    message = str(refused.value)
    assert message.startswith(f"image {path}")
    expected = {"truncated": "could not be read: image file is truncated",
                "not an image": "could not be read: cannot identify image file",
                "missing": "no such file"}[damage]
    assert expected in message
    assert message.count(str(path)) == 1  # PIL's own mention of the path is not repeated
