"""The image path of Gemma 3 (4b, 12b, 27b): projector, merging image features into the token
embeddings, and input checks. The vision entries of the weight map live with the text ones, in
gemma3.weights (so that module imports nothing of this one).

The SigLIP encoder itself lives in gemma3.siglip. The attention rule for image tokens (each
image sees all of itself, never a later image) is built by gemma3.masks from image block ids.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemma3.config import Gemma3Config, VisionConfig
from gemma3.layers import RMSNorm
from gemma3.siglip import VisionTower

Array = jax.Array

__all__ = [
    "MultiModalProjector",
    "VisionTower",
    "check_image_inputs",
    "check_pixel_values",
    "merge_image_features",
]


class MultiModalProjector(nnx.Module):
    """[I, P, C] SigLIP patches -> [I, M, D] soft tokens: average-pool the patch grid to
    sqrt(M) x sqrt(M), RMSNorm (1 + w), then x @ W with the stored [C, D] matrix."""

    def __init__(self, config: Gemma3Config, *, dtype, rngs: nnx.Rngs):
        vision, d = _vision_config(config), config.text.hidden_size
        side = round(config.mm_tokens_per_image**0.5)
        if side * side != config.mm_tokens_per_image or vision.patches_per_side % side:
            raise ValueError(
                f"mm_tokens_per_image={config.mm_tokens_per_image} must be a square whose side "
                f"divides the {vision.patches_per_side} patches per side of the vision tower")
        self.patches_per_side = vision.patches_per_side
        self.kernel = vision.patches_per_side // side
        self.mm_soft_emb_norm = RMSNorm(vision.hidden_size, vision.layer_norm_eps, dtype=dtype)
        # Stored as [C, D] (input x output), not as a torch Linear: used as x @ W, no transpose.
        self.mm_input_projection_weight = nnx.Param(
            0.02 * jax.random.normal(rngs.params(), (vision.hidden_size, d), dtype))

    def __call__(self, patches: Array) -> Array:
        i, _, c = patches.shape
        s, k = self.patches_per_side, self.kernel
        grid = patches.reshape(i, s // k, k, s // k, k, c).astype(jnp.float32)
        # Mean in fp32, one rounding: what torch's avg_pool2d does on bf16.
        pooled = jnp.mean(grid, axis=(2, 4)).astype(patches.dtype).reshape(i, -1, c)
        normed = self.mm_soft_emb_norm(pooled)  # fp32 inside, (1 + w), eps = SigLIP's eps
        # bf16 x bf16 with float32 accumulation, rounded once (torch's bf16 matmul; no float32
        # copy of the weight on XLA:CPU).
        return jnp.einsum("IPC,CD->IPD", normed, self.mm_input_projection_weight[...],
                          preferred_element_type=jnp.float32).astype(normed.dtype)


def merge_image_features(model, x: Array, input_ids: Array, pixel_values,
                         token_type_ids: Array | None = None) -> Array:
    """Replaces the embeddings x [B, T, D] at image-token positions with the projected image
    features, images taken in order over (row, position). Features are NOT scaled by sqrt(D)."""
    _require_vision(model)
    cfg = model.config
    check_pixel_values(cfg.vision, pixel_values)
    if _is_concrete(input_ids) and (token_type_ids is None or _is_concrete(token_type_ids)):
        check_image_inputs(model, input_ids, pixel_values, token_type_ids)
    features = model.multi_modal_projector(model.vision_tower(pixel_values))
    features = features.astype(x.dtype).reshape(-1, x.shape[-1])  # [I * M, D]
    is_image = input_ids == cfg.image_token_id
    # The n-th image token (row-major over B, T) takes feature row n, as masked_scatter does.
    order = jnp.cumsum(is_image.reshape(-1)) - 1
    gathered = jnp.take(features, jnp.clip(order, 0, features.shape[0] - 1), axis=0)
    return jnp.where(is_image[..., None], gathered.reshape(x.shape), x)


def check_pixel_values(vision: VisionConfig, pixel_values) -> None:
    """Raises unless pixel_values is [I, 3, image_size, image_size] with I >= 1."""
    shape = tuple(np.shape(pixel_values))
    expected = (vision.num_channels, vision.image_size, vision.image_size)
    if len(shape) != 4 or shape[1:] != expected or shape[0] < 1:
        raise ValueError(
            f"pixel_values has shape {list(shape)}; expected [I, {', '.join(map(str, expected))}]"
            f" (images, channels, height, width, as the transformers processor returns). "
            f"Make it with gemma3.images.preprocess(images, image_size={vision.image_size}).")


def check_image_inputs(model, input_ids, pixel_values, token_type_ids=None) -> None:
    """Value checks that need concrete input_ids: call before jit. Each image must fill one
    contiguous block of mm_tokens_per_image image tokens, and token_type_ids (when given) must
    mark exactly those tokens."""
    _require_vision(model)
    cfg = model.config
    check_pixel_values(cfg.vision, pixel_values)
    ids = np.asarray(input_ids)
    is_image = ids == cfg.image_token_id
    n_images, per_image = int(np.shape(pixel_values)[0]), cfg.mm_tokens_per_image
    lengths = _block_lengths(is_image)
    if int(is_image.sum()) != n_images * per_image or len(lengths) != n_images \
            or any(n != per_image for n in lengths):
        raise ValueError(
            f"pixel_values holds {n_images} image(s), but input_ids has {len(lengths)} block(s) "
            f"of image tokens (id {cfg.image_token_id}) with lengths {lengths[:8]}"
            f"{'...' if len(lengths) > 8 else ''}, {int(is_image.sum())} tokens in all; expected "
            f"{n_images} block(s) of {per_image}. Expand each <start_of_image> with "
            f"gemma3.images.expand_image_tokens and pass one image per block, in order.")
    if token_type_ids is not None:
        marked = np.asarray(token_type_ids) == 1
        if marked.shape != ids.shape or not np.array_equal(marked, is_image):
            raise ValueError(
                f"token_type_ids (shape {list(marked.shape)}, {int(marked.sum())} ones) must be 1 "
                f"exactly at the {int(is_image.sum())} image tokens of input_ids (shape "
                f"{list(ids.shape)}); pass token_type_ids=None to derive them from input_ids.")


def _require_vision(model) -> None:
    if model.config.vision is None or not hasattr(model, "vision_tower"):
        raise ValueError(
            "pixel_values were given, but this model has no vision tower (a text-only checkpoint,"
            " or one loaded with text_only=True). Load a multimodal checkpoint (4b, 12b, 27b) "
            "with gemma3.from_pretrained(path) without text_only=True to use images.")


def _vision_config(config: Gemma3Config) -> VisionConfig:
    if config.vision is None:
        raise ValueError("MultiModalProjector needs a config with a vision tower (vision=None)")
    return config.vision


def _block_lengths(is_image: np.ndarray) -> list[int]:
    """Lengths of the maximal runs of True in each row, rows in order."""
    lengths = []
    for row in is_image.reshape(-1, is_image.shape[-1]):
        edges = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
        lengths += (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
    return lengths


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)
