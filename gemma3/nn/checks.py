"""Checks of what callers pass to the forward and to generate(), made once at their top.

They run on host values before anything is compiled, so a wrong shape, dtype or value is a
TypeError or ValueError that names the argument and the value, never a JAX shape message or a
silently wrong answer. A traced value (the forward called inside a caller's jit) gets the shape
and dtype checks only, since its values are unknown.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from gemma3.config.errors import InputError

# preprocess() maps pixels to exactly [-1, 1] (0 -> -1.0, 255 -> 1.0, measured); other float
# paths to the same values (transformers' torchvision processor, a bf16 or fp16 cast) round
# by at most an ulp of 1, 1e-3 in fp16, so that much is allowed. Anything further out is
# another normalisation (ImageNet mean/std reaches 2.64) or unscaled 0..255 pixels.
PIXEL_RANGE = (-1.0, 1.0)
PIXEL_TOLERANCE = 1e-3


def is_traced(x) -> bool:
    """A value inside a caller's jit: its shape and dtype are known, its values are not."""
    return isinstance(x, jax.core.Tracer)


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """value as an int: an integer (not a bool, not a float) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f">= {minimum}"
        high = "" if maximum is None else f"<= {maximum}"
        raise InputError(f"{name} must be {' and '.join(filter(None, (low, high)))}, got {value}")
    return value


def check_token_ids(input_ids, vocab_size: int):
    """input_ids as a [B, T] integer array (a [T] one gets a batch axis), every id in the
    vocabulary, padding included (an id outside it embeds as NaN, which masking does not
    remove). Returns a numpy int32 array, or the traced value itself."""
    ids = input_ids if is_traced(input_ids) else _as_array("input_ids", input_ids)
    _check_integer_dtype("input_ids", ids)
    if ids.ndim == 1:
        ids = ids[None]
    if ids.ndim != 2 or 0 in ids.shape:
        raise InputError(f"input_ids must be a non-empty [batch, length] integer array, got "
                         f"shape {list(np.shape(input_ids))}")
    if is_traced(ids):
        return ids
    bad = (ids < 0) | (ids >= vocab_size)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(f"input_ids[{row}, {col}]: token id {int(ids[row, col])} is outside the "
                         f"vocabulary [0, {vocab_size}) of this model ({int(bad.sum())} such ids "
                         "in all); pad with the pad id 0, not -1 or -100")
    return ids.astype(np.int32)


def _as_array(name: str, value) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError:  # numpy's "inhomogeneous shape"
        raise InputError(f"{name} has rows of different lengths; left-pad them to one length "
                         "and pass attention_mask (1 = token, 0 = padding)") from None


def _check_integer_dtype(name: str, x) -> None:
    dtype = np.dtype(x.dtype)
    if dtype == np.bool_ or not np.issubdtype(dtype, np.integer):
        raise TypeError(f"{name} must hold integer token ids, got dtype {dtype}")


def check_attention_mask(attention_mask, shape: tuple[int, int]):
    """The mask as an int32 array of the ids' shape, holding only 0 (padding) and 1 (token).
    A mask of another shape is never reshaped (a transposed [T, B] mask has the same size)."""
    if attention_mask is None:
        return np.ones(shape, np.int32)
    mask = attention_mask if is_traced(attention_mask) else _as_array("attention_mask",
                                                                        attention_mask)
    if mask.ndim == 1 and shape[0] == 1:
        mask = mask[None]
    if tuple(mask.shape) != tuple(shape):
        raise InputError(f"attention_mask has shape {list(np.shape(attention_mask))}; expected "
                         f"{list(shape)}, the shape of input_ids ([batch, length])")
    if not (np.issubdtype(mask.dtype, np.number) or mask.dtype == np.bool_):
        raise TypeError(f"attention_mask must be numeric 0/1 or bool, got dtype {mask.dtype}")
    if is_traced(mask):
        return mask
    bad = (mask != 0) & (mask != 1)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise InputError(f"attention_mask[{row}, {col}] is {mask[row, col].item()!r}; the mask "
                         "holds only 1 (a token) and 0 (padding)")
    return mask.astype(np.int32)


def check_left_padded(mask: np.ndarray) -> None:
    """Each row is padding (0s) then its tokens (1s), with at least one token.

    Right padding (or a hole) is refused, not handled: generate() writes every row's new tokens
    after the last column, so a row with padding at its end would attend to that padding and
    continue from a wrong position. transformers only warns and returns such rows' wrong
    tokens; here it is an error that says what to do."""
    empty = np.flatnonzero(mask.sum(axis=1) == 0)
    if empty.size:
        raise InputError(f"prompt row(s) {empty.tolist()} are empty (attention_mask all 0)")
    after_token = np.maximum.accumulate(mask, axis=1) & (mask == 0)  # a 0 after a 1
    rows = np.flatnonzero(after_token.any(axis=1))
    if rows.size:
        col = int(np.flatnonzero(after_token[rows[0]])[0])
        raise InputError(f"attention_mask row {int(rows[0])} has padding after its first token "
                         f"(a 0 at column {col}): generate() needs left padding, every row's "
                         "padding before its tokens. Left-pad the batch (tokenizer "
                         "padding_side='left').")


def check_stop_ids(stop_ids, vocab_size: int, most: int) -> list[int]:
    """A list (tuple, set, 1-d array) of at most `most` token ids in the vocabulary."""
    if isinstance(stop_ids, (str, bytes)) or np.ndim(stop_ids) != 1 and not isinstance(
            stop_ids, (set, frozenset)):
        raise TypeError(f"stop_ids must be a list of token ids (or None for the config's eos "
                        f"ids), got {type(stop_ids).__name__} {stop_ids!r}")
    ids = [check_int(f"stop_ids[{i}]", x, 0, vocab_size - 1) for i, x in enumerate(stop_ids)]
    if len(ids) > most:
        raise InputError(f"stop_ids has {len(ids)} ids; at most {most} are supported")
    return ids


def check_sampler(sampler, vocab_size: int) -> None:
    """A sampling strategy instance: callable as sampler(logits, key), top-k within the
    vocabulary (jax.lax.top_k of more than V values fails deep inside the compile)."""
    if isinstance(sampler, type) or not callable(sampler):
        what = sampler.__name__ if isinstance(sampler, type) else type(sampler).__name__
        raise TypeError(f"sampler must be a sampling strategy instance such as gemma3.Greedy() "
                        f"or gemma3.TopK(40), got {what} {sampler!r}")
    k = getattr(sampler, "k", None)
    # int(): numbers.Integral declares no comparison; for an Integral it is the same number.
    if isinstance(k, numbers.Integral) and int(k) > vocab_size:
        raise InputError(f"sampler {sampler!r} has top_k {k}, more than the model's vocabulary "
                         f"of {vocab_size} tokens")


def check_images(config, input_ids, pixel_values, token_type_ids=None) -> None:
    """Images against the model and the prompt: without pixel_values no image tokens; with
    them, a vision tower, float pixels [I, 3, S, S] in [-1, 1], and (for concrete ids) exactly
    one block of mm_tokens_per_image image tokens per image, which token_type_ids, when given,
    marks. `config` is the model's Gemma3Config. The one place images are checked: the forward
    and generate() call it before compiling."""
    concrete = not is_traced(input_ids) and not is_traced(token_type_ids)
    if pixel_values is None:
        if concrete:
            _check_no_image_tokens(config, input_ids, token_type_ids)
        return
    check_pixel_values(pixel_values)
    if config.vision is None:
        raise InputError(
            "pixel_values were given, but this model has no vision tower (a text-only checkpoint,"
            " or one loaded with text_only=True). Load a multimodal checkpoint (4b, 12b, 27b) "
            "with gemma3.from_pretrained(path) without text_only=True to use images.")
    _check_pixel_shape(config.vision, pixel_values)
    if concrete:
        _check_image_blocks(config, input_ids, int(np.shape(pixel_values)[0]), token_type_ids)


def check_pixel_values(pixel_values) -> None:
    """Float pixel values, finite, in the [-1, 1] that gemma3.images.preprocess produces (within
    PIXEL_TOLERANCE); a traced array gets the dtype check only."""
    if not hasattr(pixel_values, "dtype"):
        pixel_values = np.asarray(pixel_values)
    if not jnp.issubdtype(pixel_values.dtype, jnp.floating):
        raise TypeError(f"pixel_values must be a float array in [-1, 1], as "
                        f"gemma3.images.preprocess returns; got dtype {pixel_values.dtype}")
    if is_traced(pixel_values):
        return
    x = np.asarray(pixel_values, np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        index = [int(i[0]) for i in np.nonzero(~finite)]
        raise InputError(f"pixel_values has {int((~finite).sum())} non-finite value(s) (NaN or "
                         f"inf), the first {x[tuple(index)]} at {index} (image, channel, y, x)")
    low, high = float(x.min()), float(x.max())
    if low < PIXEL_RANGE[0] - PIXEL_TOLERANCE or high > PIXEL_RANGE[1] + PIXEL_TOLERANCE:
        raise InputError(f"pixel_values range from {low:.4g} to {high:.4g}; expected [-1, 1], "
                         "what gemma3.images.preprocess (and the transformers processor) "
                         "produce: pixels / 255, then (x - 0.5) / 0.5")


def _check_pixel_shape(vision, pixel_values) -> None:
    """[I, 3, image_size, image_size] with I >= 1."""
    shape = tuple(np.shape(pixel_values))
    expected = (vision.num_channels, vision.image_size, vision.image_size)
    if len(shape) != 4 or shape[1:] != expected or shape[0] < 1:
        raise InputError(
            f"pixel_values has shape {list(shape)}; expected [I, {', '.join(map(str, expected))}]"
            f" (images, channels, height, width, as the transformers processor returns). "
            f"Make it with gemma3.images.preprocess(images, image_size={vision.image_size}).")


def _check_image_blocks(config, input_ids, n_images: int, token_type_ids) -> None:
    """Each image fills one contiguous block of mm_tokens_per_image image tokens, and
    token_type_ids (when given) marks exactly those tokens."""
    ids = np.asarray(input_ids)
    is_image = ids == config.image_token_id
    per_image = config.mm_tokens_per_image
    lengths = _block_lengths(is_image)
    if int(is_image.sum()) != n_images * per_image or len(lengths) != n_images \
            or any(n != per_image for n in lengths):
        raise InputError(
            f"pixel_values holds {n_images} image(s), but input_ids has {len(lengths)} block(s) "
            f"of image tokens (id {config.image_token_id}) with lengths {lengths[:8]}"
            f"{'...' if len(lengths) > 8 else ''}, {int(is_image.sum())} tokens in all; expected "
            f"{n_images} block(s) of {per_image}. Expand each <start_of_image> with "
            f"gemma3.images.expand_image_tokens and pass one image per block, in order.")
    if token_type_ids is not None:
        marked = np.asarray(token_type_ids) == 1
        if marked.shape != ids.shape or not np.array_equal(marked, is_image):
            raise InputError(
                f"token_type_ids (shape {list(marked.shape)}, {int(marked.sum())} ones) must be 1 "
                f"exactly at the {int(is_image.sum())} image tokens of input_ids (shape "
                f"{list(ids.shape)}); pass token_type_ids=None to derive them from input_ids.")


def _block_lengths(is_image: np.ndarray) -> list[int]:
    """Lengths of the maximal runs of True in each row, rows in order."""
    lengths = []
    for row in is_image.reshape(-1, is_image.shape[-1]):
        edges = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
        lengths += (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
    return lengths


def _check_no_image_tokens(config, ids, token_type_ids) -> None:
    """Without pixel_values, no image soft tokens: they would embed as a meaningless token."""
    n = int((np.asarray(ids) == config.image_token_id).sum())
    if n:
        raise InputError(f"input_ids has {n} image token(s) (id {config.image_token_id}) but no "
                         "pixel_values were given; pass the images as pixel_values "
                         "(gemma3.images.preprocess) or remove the image tokens")
    if token_type_ids is not None and (np.asarray(token_type_ids) == 1).any():
        raise InputError("token_type_ids marks image tokens (1s) but no pixel_values were given")
