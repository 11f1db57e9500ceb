"""Masks and RoPE as pure functions, against literal expected values."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from gemma3.config import RopeConfig
from gemma3.nn.masks import causal_mask, image_block_ids, positions_from_mask
from gemma3.nn.rope import apply_rope, inverse_frequencies


def mask_of(t, window=None, valid=None, blocks=None):
    index = jnp.arange(t)
    valid = jnp.ones((1, t), bool) if valid is None else jnp.asarray([valid], bool)
    b = None if blocks is None else jnp.asarray([blocks])
    return np.asarray(causal_mask(index, index, valid, window, b, b)[0]).astype(int)


def test_sliding_window_boundary_is_exact():
    # Key j is visible to query i iff i - w < j <= i: exactly w keys including itself.
    expected = np.array([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 0, 1, 1, 1],
    ])
    np.testing.assert_array_equal(mask_of(6, window=3), expected)


def test_padding_hides_keys_only():
    m = mask_of(4, valid=[0, 0, 1, 1])
    np.testing.assert_array_equal(m, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]])


def test_image_blocks_are_bidirectional_and_never_see_later_images():
    # tokens: text, image A (2 tokens), text, image B (2 tokens)
    blocks = [0, 1, 1, 0, 2, 2]
    expected = np.array([
        [1, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],  # first token of A sees the rest of A
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1],
    ])
    np.testing.assert_array_equal(mask_of(6, blocks=blocks), expected)


def test_window_bounds_only_the_left_side_of_an_image_block():
    # transformers' sliding rule: (k > q - w) AND (causal OR same block).
    m = mask_of(4, window=2, blocks=[1, 1, 1, 1])
    np.testing.assert_array_equal(m, [[1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]])


def test_image_block_ids_number_runs():
    ids = image_block_ids(jnp.asarray([[0, 1, 1, 0, 0, 1, 0, 1]]))
    np.testing.assert_array_equal(ids, [[0, 1, 1, 0, 0, 2, 0, 3]])


def test_positions_follow_generate():
    np.testing.assert_array_equal(positions_from_mask(jnp.asarray([[0, 0, 1, 1, 1]])),
                                  [[0, 0, 0, 1, 2]])


def test_linear_scaling_divides_frequencies():
    # Facts sheet 3.7: global inv_freq with hd = 8, theta 1e6, factor 8.
    freqs = np.asarray(inverse_frequencies(RopeConfig(1e6, 8.0), 8))
    np.testing.assert_allclose(freqs, [0.125, 0.0039528, 0.000125, 3.95e-6], rtol=1e-3)


def test_rope_rotates_contiguous_halves():
    x = jnp.asarray([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 1, 4)
    angle = np.pi / 2  # cos 0, sin 1 on every pair: x -> rotate_half(x) = [-3, -4, 1, 2]
    cos = jnp.full((1, 1, 4), np.cos(angle))
    sin = jnp.full((1, 1, 4), np.sin(angle))
    np.testing.assert_allclose(np.asarray(apply_rope(x, cos, sin)).ravel(), [-3, -4, 1, 2],
                               atol=1e-6)
