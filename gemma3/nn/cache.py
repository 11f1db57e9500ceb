"""KV cache: global layers keep every position, sliding layers a ring of `sliding_window` slots.

Gemma 3 has five sliding layers per global one, so at long context this cache is about 6x
smaller than one that gives every layer the full length.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gemma3.config import GLOBAL, TextConfig
from gemma3.config.errors import InputError

Array = jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LayerKV:
    """Keys [B, K, S, H] and values [B, K, H, S] of one layer: each with its contracted axis
    last, the layout XLA's attention dots want, so the cache is not transposed every step.
    Keys are stored after RoPE."""

    keys: Array
    values: Array
    ring: bool = dataclasses.field(metadata={"static": True})

    @property
    def slots(self) -> int:
        return self.keys.shape[2]

    def prefill(self, k: Array, v: Array) -> LayerKV:
        """Write keys [B, K, T, H] and values [B, K, H, T] of array indices 0..T-1 (a ring keeps
        only the last `slots`)."""
        length = k.shape[2]
        k, v = k.astype(self.keys.dtype), v.astype(self.values.dtype)
        if not self.ring:
            if length > self.slots:
                raise InputError(f"prompt of {length} tokens does not fit a cache of {self.slots}")
            return self._put(k, v, 0)
        kept = min(length, self.slots)
        slots = np.arange(length - kept, length) % self.slots
        return dataclasses.replace(
            self,
            keys=self.keys.at[:, :, slots].set(k[:, :, length - kept:]),
            values=self.values.at[:, :, :, slots].set(v[:, :, :, length - kept:]),
        )

    def insert(self, k: Array, v: Array, index: Array) -> LayerKV:
        """Write one step (keys [B, K, 1, H], values [B, K, H, 1]) for array index `index`."""
        slot = index % self.slots if self.ring else index
        return self._put(k.astype(self.keys.dtype), v.astype(self.values.dtype), slot)

    def _put(self, k: Array, v: Array, slot) -> LayerKV:
        return dataclasses.replace(
            self,
            keys=jax.lax.dynamic_update_slice(self.keys, k, (0, 0, slot, 0)),
            values=jax.lax.dynamic_update_slice(self.values, v, (0, 0, 0, slot)),
        )

    def slot_indices(self, index: Array) -> Array:
        """[S]: the array index each slot holds once `index` is written (negative: never
        written; for a linear cache, slots beyond `index` are not written yet either)."""
        slots = jnp.arange(self.slots)
        if not self.ring:
            return slots
        return index - (index - slots) % self.slots


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KVCache:
    """The cache of every layer, plus which array indices hold real tokens."""

    layers: tuple[LayerKV, ...]
    key_valid: Array  # [B, max_length] bool: False at left padding
    length: Array  # int32 scalar: array indices written so far

    @property
    def max_length(self) -> int:
        return self.key_valid.shape[1]

    @classmethod
    def create(cls, cfg: TextConfig, batch: int, max_length: int, dtype) -> KVCache:
        layers = []
        for layer_type in cfg.layer_types:
            ring = layer_type != GLOBAL and cfg.sliding_window < max_length
            slots = cfg.sliding_window if ring else max_length
            k, h = cfg.num_key_value_heads, cfg.head_dim
            layers.append(LayerKV(jnp.zeros((batch, k, slots, h), dtype),
                                  jnp.zeros((batch, k, h, slots), dtype), ring))
        return cls(tuple(layers), jnp.zeros((batch, max_length), bool), jnp.zeros((), jnp.int32))


def cache_bytes(cfg: TextConfig, batch: int, length: int, dtype) -> int:
    """Bytes of keys and values for `length` positions: full length on global layers,
    min(window, length) on sliding ones."""
    itemsize = np.dtype(dtype).itemsize
    per_position = 2 * batch * cfg.num_key_value_heads * cfg.head_dim * itemsize
    return sum(
        per_position * (length if t == GLOBAL else min(cfg.sliding_window, length))
        for t in cfg.layer_types
    )
