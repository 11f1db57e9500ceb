"""generate() and the forward refuse bad arguments before compiling, naming what is wrong.

Every refusal happens before anything is traced, so the models they use are abstract (shapes
only, nnx.eval_shape): if a check let a case through, the call would fail on the missing
weights with another error, and the test with it.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gemma3
from gemma3.config import Gemma3Config
from gemma3.generation.sampling import Greedy, Temperature, TopK, TopP
from tests.support.tiny import save_text_model, text_config
from tests.support.vision_fixtures import IMAGE, IMAGE_SIZE, hf_config, image_block, random_pixels

VOCAB = 301  # tests/tiny.py's
IDS = np.array([[5, 6, 7, 8]])


def abstract_model(hf) -> gemma3.Gemma3:
    config = Gemma3Config.from_hf_config(hf.to_dict())
    return nnx.eval_shape(lambda: gemma3.Gemma3(config, dtype=jnp.float32, rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def model():
    return abstract_model(text_config())


@pytest.fixture(scope="module")
def vision_model():
    return abstract_model(hf_config())


def image_prompt() -> np.ndarray:
    return np.array([[2, 10, *image_block(), 11]])


def refuses(error, message, call, *args, **kwargs):
    with pytest.raises(error, match=re.escape(message)):
        call(*args, **kwargs)


GENERATE_CASES = {
    # input_ids
    "float ids": ({"input_ids": IDS.astype(np.float32)}, TypeError,
                  "input_ids must hold integer token ids, got dtype float32"),
    "bool ids": ({"input_ids": IDS > 5}, TypeError, "got dtype bool"),
    "3-d ids": ({"input_ids": IDS[None]}, ValueError,
                "input_ids must be a non-empty [batch, length] integer array, got shape [1, 1, 4]"),
    "ragged rows": ({"input_ids": [[5, 6, 7], [5, 6]]}, ValueError,
                    "input_ids has rows of different lengths; left-pad them"),
    "-1 as padding": ({"input_ids": np.array([[-1, 6, 7, 8]]),
                       "attention_mask": np.array([[0, 1, 1, 1]])}, ValueError,
                      "input_ids[0, 0]: token id -1 is outside the vocabulary [0, 301)"),
    # attention_mask
    "transposed mask": ({"input_ids": np.tile(IDS, (2, 1)), "attention_mask": np.ones((4, 2))},
                        ValueError, "attention_mask has shape [4, 2]; expected [2, 4]"),
    "mask value 2": ({"attention_mask": np.array([[1, 2, 1, 1]])}, ValueError,
                     "attention_mask[0, 1] is 2; the mask holds only 1 (a token) and 0"),
    "mask value 0.5": ({"attention_mask": np.array([[0.5, 1, 1, 1]])}, ValueError,
                       "attention_mask[0, 0] is 0.5"),
    "mask of strings": ({"attention_mask": np.array([["1", "1", "1", "1"]])}, TypeError,
                        "attention_mask must be numeric 0/1 or bool, got dtype <U1"),
    "right padding": ({"input_ids": np.array([[5, 6, 7, 8], [5, 6, 0, 0]]),
                       "attention_mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]])}, ValueError,
                      ("attention_mask row 1 has padding after its first token (a 0 at column 2):"
                      " generate() needs left padding")),
    "hole in the mask": ({"attention_mask": np.array([[1, 0, 1, 1]])}, ValueError,
                         "Left-pad the batch"),
    # the other arguments
    "max_new_tokens 8.0": ({"max_new_tokens": 8.0}, TypeError,
                           "max_new_tokens must be an integer, got float 8.0"),
    "max_new_tokens True": ({"max_new_tokens": True}, TypeError, "got bool True"),
    "max_new_tokens -3": ({"max_new_tokens": -3}, ValueError,
                          "max_new_tokens must be >= 1, got -3"),
    "stop_ids an int": ({"stop_ids": 1}, TypeError,
                        ("stop_ids must be a list of token ids (or None for the config's eos ids),"
                        " got int 1")),
    "stop id past the vocabulary": ({"stop_ids": [1, 301]}, ValueError,
                                    "stop_ids[1] must be >= 0 and <= 300, got 301"),
    "nine stop ids": ({"stop_ids": list(range(9))}, ValueError,
                      "stop_ids has 9 ids; at most 8 are supported"),
    "sampler a class": ({"sampler": Greedy}, TypeError,
                        "sampler must be a sampling strategy instance such as gemma3.Greedy()"),
    "sampler a string": ({"sampler": "greedy"}, TypeError, "got str 'greedy'"),
    "top_k past the vocabulary": ({"sampler": TopK(302)}, ValueError,
                                  "has top_k 302, more than the model's vocabulary of 301"),
    "seed 1.5": ({"seed": 1.5}, TypeError, "seed must be an integer, got float 1.5"),
    "seed 2**64": ({"seed": 2**64}, ValueError, "seed must be >= -9223372036854775808 and <= "),
    "cache_length 0": ({"cache_length": 0}, ValueError, "cache_length must be >= 1, got 0"),
    "on_token not callable": ({"on_token": "print"}, TypeError,
                              "on_token must be a function on_token(step, tokens), got str"),
}


@pytest.mark.parametrize("case", list(GENERATE_CASES))
def test_generate_refuses(model, case):
    kwargs, error, message = GENERATE_CASES[case]
    kwargs = {"input_ids": IDS, "max_new_tokens": 4, **kwargs}
    refuses(error, message, gemma3.generate, model, **kwargs)


def test_generate_refuses_what_is_not_a_model(model):
    refuses(TypeError, "model must be a gemma3.Gemma3 (from gemma3.from_pretrained), got "
            "Gemma3Config", gemma3.generate, model.config, IDS, max_new_tokens=4)


FORWARD_CASES = {
    "id past the vocabulary": ({"input_ids": np.array([[5, 301]])}, ValueError,
                               "input_ids[0, 1]: token id 301 is outside the vocabulary"),
    "float ids": ({"input_ids": IDS.astype(np.float64)}, TypeError, "got dtype float64"),
    "transposed mask": ({"input_ids": np.tile(IDS, (2, 1)), "attention_mask": np.ones((4, 2))},
                        ValueError, "attention_mask has shape [4, 2]; expected [2, 4]"),
    "mask value -1": ({"attention_mask": np.array([[1, 1, -1, 1]])}, ValueError,
                      "attention_mask[0, 2] is -1"),
    "positions of another shape": ({"positions": np.arange(5)[None]}, ValueError,
                                   "positions must be an integer array of input_ids' shape [1, 4]"),
}


@pytest.mark.parametrize("case", list(FORWARD_CASES))
def test_forward_refuses(model, case):
    kwargs, error, message = FORWARD_CASES[case]
    kwargs = {"input_ids": IDS, **kwargs}
    refuses(error, message, model, **kwargs)


def nan_pixels():
    pixels = random_pixels(1)
    pixels[0, 1, 2, 3] = np.nan
    return pixels


IMAGE_CASES = {
    "image tokens without pixels": ({}, ValueError,
                                    (f"input_ids has 16 image token(s) (id {IMAGE}) but no "
                                    "pixel_values were given")),
    "token_type_ids without pixels": (
        {"token_type_ids": (image_prompt() == IMAGE).astype(int), "input_ids": IDS}, ValueError,
        "token_type_ids marks image tokens (1s) but no pixel_values were given"),
    "NaN pixels": ({"pixel_values": nan_pixels()}, ValueError,
                   ("pixel_values has 1 non-finite value(s) (NaN or inf), the first nan at "
                   "[0, 1, 2, 3]")),
    "0..255 pixels": ({"pixel_values": (random_pixels(1) + 1) * 127.5}, ValueError,
                      "; expected [-1, 1], what gemma3.images.preprocess"),
    "uint8 pixels": ({"pixel_values": np.zeros((1, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)},
                     TypeError, "pixel_values must be a float array in [-1, 1]"),
}


@pytest.mark.parametrize("entry", ["generate", "forward"])
@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_image_inputs_are_refused(vision_model, case, entry):
    kwargs, error, message = IMAGE_CASES[case]
    kwargs = {"input_ids": image_prompt(), **kwargs}
    if entry == "generate":
        refuses(error, message, gemma3.generate, vision_model, max_new_tokens=4, **kwargs)
    else:
        refuses(error, message, vision_model, **kwargs)


def test_pixels_at_the_edges_of_the_range_are_accepted():
    from gemma3.nn.checks import PIXEL_TOLERANCE, check_pixel_values

    edge = np.array([[-1.0, 1.0 + PIXEL_TOLERANCE / 2]], np.float32)
    check_pixel_values(edge)  # preprocess's exact -1 and 1, and float rounding above 1
    refuses(ValueError, "range from -1 to 1.002", check_pixel_values, edge + [[0, 0.0015]])


def test_forward_takes_right_padding_exactly(tmp_path):
    """The forward (unlike generate) accepts any 0/1 mask: each token's logits are exact, since
    positions count only the tokens before it."""
    save_text_model(tmp_path, seed=1)
    model = gemma3.from_pretrained(tmp_path, dtype="float32", progress=False)
    ids = np.array([[5, 6, 7, 8, 0, 0]])
    padded = np.asarray(model(ids, attention_mask=np.array([[1, 1, 1, 1, 0, 0]])))
    alone = np.asarray(model(ids[:, :4]))
    # fp32, the same math over two more (masked) keys: measured ~1e-7 of the logit scale
    assert np.abs(padded[:, :4] - alone).max() < 1e-5 * np.abs(alone).max()


SAMPLER_CASES = {
    "temperature a string": (lambda: Temperature("hot"), TypeError,
                             "temperature must be a finite number > 0"),
    "temperature nan": (lambda: Temperature(float("nan")), ValueError, "got nan"),
    "temperature inf": (lambda: TopP(0.9, float("inf")), ValueError, "got inf"),
    "top-k 2.5": (lambda: TopK(2.5), TypeError, "top-k needs an integer k >= 1; got float 2.5"),
    "top-k 0": (lambda: TopK(0), ValueError, "top-k needs k >= 1; got 0"),
    "top-p nan": (lambda: TopP(float("nan")), ValueError, "top-p needs 0 < p <= 1; got nan"),
}


@pytest.mark.parametrize("case", list(SAMPLER_CASES))
def test_sampler_constructors_refuse(case):
    make, error, message = SAMPLER_CASES[case]
    refuses(error, message, make)


@pytest.mark.parametrize("images, size, error, message", [
    ([None], 8, TypeError, "image 0 is a NoneType; expected a uint8 [H, W, 3] array"),
    (np.zeros((4, 4, 3), np.uint8), 0, ValueError, "image_size must be a positive integer, got 0"),
    ({"a": 1}, 8, TypeError, "preprocess takes an image or a list of images, got dict"),
])
def test_preprocess_refuses(images, size, error, message):
    pytest.importorskip("PIL", reason="gemma3.images needs Pillow (the images extra)")
    from gemma3.inputs.images import preprocess

    refuses(error, message, preprocess, images, size)
