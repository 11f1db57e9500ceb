"""Attention masks as pure functions of token indices. True means "may attend".

Indices are positions in the (left-padded) array, as transformers builds its masks; for real
tokens of a left-padded row they differ from RoPE positions by a constant, so windows agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def positions_from_mask(attention_mask: jax.Array) -> jax.Array:
    """RoPE positions the way `generate()` derives them: cumsum(mask) - 1, pads at 0."""
    mask = attention_mask.astype(jnp.int32)
    return jnp.where(mask > 0, jnp.cumsum(mask, axis=-1) - 1, 0)


def causal_mask(
    query_index: jax.Array,
    key_index: jax.Array,
    key_valid: jax.Array,
    window: int | None = None,
    query_block: jax.Array | None = None,
    key_block: jax.Array | None = None,
) -> jax.Array:
    """[B, T, S] mask.

    query_index [T] or [B, T], key_index [S] or [B, S]: array indices of queries and keys.
    key_valid [B, S]: False for padding (and for cache slots not yet written).
    window: sliding window w; key j is visible to query i iff i - w < j <= i.
    query_block / key_block [B, T] / [B, S]: image block ids (0 = text). Tokens of one image
      block see each other both ways, also on sliding layers, where the window still bounds
      the left side (transformers' rule; docs/gemma3-facts.md, Numerics).
    """
    q = jnp.broadcast_to(query_index, key_valid.shape[:1] + query_index.shape[-1:])[:, :, None]
    k = jnp.broadcast_to(key_index, key_valid.shape)[:, None, :]
    allowed = k <= q
    if query_block is not None:
        assert key_block is not None  # block ids come in pairs: the model passes both or neither
        same_block = (query_block[:, :, None] == key_block[:, None, :]) & (
            query_block[:, :, None] > 0
        )
        allowed = allowed | same_block
    if window is not None:
        allowed = allowed & (k > q - window)
    return allowed & key_valid[:, None, :]


def image_block_ids(is_image: jax.Array) -> jax.Array:
    """[B, T] ids numbering each maximal run of image tokens 1, 2, ... (0 for text)."""
    is_image = is_image.astype(jnp.int32)
    starts = is_image * (1 - jnp.pad(is_image, ((0, 0), (1, 0)))[:, :-1])
    return jnp.cumsum(starts, axis=-1) * is_image
