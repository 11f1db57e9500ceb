"""Images for Gemma 3: loading, preprocessing to pixel_values, and prompt expansion.

`preprocess` does what transformers' Gemma3ImageProcessorPil does with the released
preprocessor_config.json: convert to RGB, stretch to image_size x image_size with PIL's bilinear
filter (no aspect-preserving crop), rescale by 1/255, normalise with mean 0.5 and std 0.5 to
[-1, 1], channels first. The torchvision-based Gemma3ImageProcessor (the transformers default)
resizes slightly differently, so parity checks should compute pixel_values once and feed the
same array to both models.

Pan-and-scan (extra crops of wide or tall images, off by default in the processor) is not
implemented: every image becomes exactly one block of mm_tokens_per_image soft tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from gemma3.config.errors import InputError
from gemma3.config.special_tokens import (
    BOI,
    BOI_ID,
    EOI,
    EOI_ID,
    IMAGE,
    IMAGE_TOKEN_ID,
    NEWLINES_ID,
)

IMAGE_MEAN = IMAGE_STD = 0.5
RESCALE = 1 / 255


class ImageError(InputError):
    """An image file that cannot be read; the message names the file."""


def load_image(path: str | os.PathLike) -> np.ndarray:
    """The image at path as uint8 [H, W, 3] RGB (grey, palette and alpha images converted).
    A missing, unreadable, truncated or oversized file is an ImageError naming it (PIL's own
    messages, such as "image file is truncated", do not)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"image {os.fspath(path)}: no such file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).replace(repr(os.fspath(path)), "").strip(" :") or type(e).__name__
        raise ImageError(f"image {os.fspath(path)} could not be read: {reason}") from None


def preprocess(images, image_size: int = 896) -> np.ndarray:
    """One image or a list of images (uint8 [H, W, 3] arrays, PIL images or paths) ->
    pixel_values float32 [I, 3, image_size, image_size] in [-1, 1]."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise InputError(f"image_size must be a positive integer, got {image_size!r}")
    if isinstance(images, (np.ndarray, Image.Image, str, os.PathLike)):
        images = [images]
    if not isinstance(images, (list, tuple)):
        raise TypeError(f"preprocess takes an image or a list of images, got "
                        f"{type(images).__name__}")
    if not images:
        raise InputError("preprocess needs at least one image; got an empty list")
    return np.stack([_preprocess_one(image, image_size, i) for i, image in enumerate(images)])


def _preprocess_one(image, size: int, index: int) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        image = load_image(image)
    if not isinstance(image, (np.ndarray, Image.Image)):
        raise TypeError(f"image {index} is a {type(image).__name__}; expected a uint8 [H, W, 3] "
                        "array, a PIL image or a path")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
            raise InputError(
                f"image {index} is an array of dtype {image.dtype} and shape "
                f"{list(image.shape)}; expected uint8 [H, W, 3] (RGB), as "
                "gemma3.images.load_image returns")
        image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    resized = image.convert("RGB").resize((size, size), resample=Image.Resampling.BILINEAR)
    # Rescale in float64 then cast, as transformers' numpy rescale does.
    x = (np.asarray(resized, np.float64) * RESCALE).astype(np.float32)
    x = (x - np.float32(IMAGE_MEAN)) / np.float32(IMAGE_STD)
    return x.transpose(2, 0, 1)


def expand_image_tokens(prompt, mm_tokens_per_image: int = 256, *, boi_id: int = BOI_ID,
                        eoi_id: int = EOI_ID, image_token_id: int = IMAGE_TOKEN_ID,
                        newlines_id: int = NEWLINES_ID):
    """Expands each <start_of_image> of a prompt into a full image block.

    Token ids (a sequence of ints) -> list of ints: each boi_id becomes
    [newlines_id, boi_id, image_token_id x mm_tokens_per_image, eoi_id, newlines_id].
    Text (a str) -> str: each "<start_of_image>" becomes
    "\\n\\n<start_of_image>" + "<image_soft_token>" x mm_tokens_per_image + "<end_of_image>\\n\\n",
    exactly the replacement Gemma3Processor makes before tokenising.

    The two agree whenever the tokenizer encodes the processor's "\\n\\n" as the single piece 108.
    SentencePiece can merge it with newlines next to it in the user's text (a prompt ending in
    "\\n" before the image gives "\\n\\n\\n", another piece); expanding ids keeps 108 separate, so
    for byte-identical input_ids with the processor, expand the text and then tokenise it.
    """
    block_ids = [newlines_id, boi_id, *[image_token_id] * mm_tokens_per_image, eoi_id, newlines_id]
    if isinstance(prompt, str):
        block = "\n\n" + BOI + IMAGE * mm_tokens_per_image + EOI + "\n\n"
        return prompt.replace(BOI, block)
    out: list[int] = []
    for token in np.asarray(prompt).reshape(-1).tolist():
        out.extend(block_ids if token == boi_id else [token])
    return out


def image_token_type_ids(input_ids, image_token_id: int = IMAGE_TOKEN_ID) -> np.ndarray:
    """token_type_ids as the processor returns them: 1 at image soft tokens, 0 elsewhere."""
    return (np.asarray(input_ids) == image_token_id).astype(np.int32)


def prepare_image_prompt(token_ids: Sequence[int], images, config) -> dict[str, np.ndarray]:
    """Everything the model needs for one prompt with images: expands each <start_of_image> in
    token_ids, preprocesses the images at the vision tower's size, and checks the counts.
    Returns input_ids [1, T], token_type_ids [1, T] and pixel_values [I, 3, S, S]."""
    if config.vision is None:
        raise InputError("this config has no vision tower (a text-only model); images need a "
                         "multimodal checkpoint (4b, 12b, 27b) loaded without text_only=True")
    ids = expand_image_tokens(token_ids, config.mm_tokens_per_image, boi_id=config.boi_token_id,
                              eoi_id=config.eoi_token_id, image_token_id=config.image_token_id)
    pixel_values = preprocess(images, config.vision.image_size)
    n_blocks = sum(1 for t in np.asarray(token_ids).reshape(-1) if t == config.boi_token_id)
    if n_blocks != len(pixel_values):
        raise InputError(
            f"the prompt has {n_blocks} <start_of_image> token(s) (id {config.boi_token_id}) but "
            f"{len(pixel_values)} image(s) were given; put one <start_of_image> per image")
    input_ids = np.asarray([ids], np.int32)
    return {"input_ids": input_ids, "pixel_values": pixel_values,
            "token_type_ids": image_token_type_ids(input_ids, config.image_token_id)}
