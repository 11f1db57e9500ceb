"""Rotary position embedding, split-half form (rotate the two contiguous halves, not pairs)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gemma3.config import RopeConfig


def inverse_frequencies(rope: RopeConfig, head_dim: int) -> jax.Array:
    """theta^(-2k/H) for k < H/2; linear scaling divides them by the factor."""
    exponents = jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim
    return 1.0 / (rope.theta**exponents) / rope.linear_factor


def rope_tables(positions: jax.Array, rope: RopeConfig, head_dim: int, dtype) -> tuple:
    """cos and sin, [B, T, H], computed in fp32 then cast to the activation dtype, as
    transformers does (the rotation itself then runs in that dtype)."""
    angles = positions.astype(jnp.float32)[..., None] * inverse_frequencies(rope, head_dim)
    angles = jnp.concatenate([angles, angles], axis=-1)
    return jnp.cos(angles).astype(dtype), jnp.sin(angles).astype(dtype)


def apply_rope(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """x: [B, T, heads, H]; cos, sin: [B, T, H]."""
    first, second = jnp.split(x, 2, axis=-1)
    rotated = jnp.concatenate([-second, first], axis=-1)
    return x * cos[:, :, None, :] + rotated * sin[:, :, None, :]
