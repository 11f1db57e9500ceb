"""The image path of Gemma 3 (4b, 12b, 27b): the projector, and merging image features into
the token embeddings. Images are checked once, before compiling, by gemma3.nn.checks.

The SigLIP encoder itself lives in gemma3.nn.siglip. The attention rule for image tokens (each
image sees all of itself, never a later image) is built by gemma3.nn.masks from image block ids.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from gemma3.config import Gemma3Config, VisionConfig
from gemma3.nn.layers import RMSNorm
from gemma3.nn.siglip import VisionTower

Array = jax.Array

__all__ = ["MultiModalProjector", "VisionTower", "merge_image_features"]


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
    cfg = model.config
    features = model.multi_modal_projector(model.vision_tower(pixel_values))
    features = features.astype(x.dtype).reshape(-1, x.shape[-1])  # [I * M, D]
    is_image = input_ids == cfg.image_token_id
    # The n-th image token (row-major over B, T) takes feature row n, as masked_scatter does.
    order = jnp.cumsum(is_image.reshape(-1)) - 1
    gathered = jnp.take(features, jnp.clip(order, 0, features.shape[0] - 1), axis=0)
    return jnp.where(is_image[..., None], gathered.reshape(x.shape), x)


def _vision_config(config: Gemma3Config) -> VisionConfig:
    if config.vision is None:
        raise ValueError("MultiModalProjector needs a config with a vision tower (vision=None)")
    return config.vision
