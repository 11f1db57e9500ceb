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

Array = jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LayerKV:
    """Keys and values of one layer, [B, S, K, H]; keys are stored after RoPE."""

    keys: Array
    values: Array
    ring: bool = dataclasses.field(metadata={"static": True})

    @property
    def slots(self) -> int:
        return self.keys.shape[1]

    def prefill(self, k: Array, v: Array) -> LayerKV:
        """Write the keys of array indices 0..T-1 (a ring keeps only the last `slots`)."""
        length = k.shape[1]
        if not self.ring:
            if length > self.slots:
                raise ValueError(f"prompt of {length} tokens does not fit a cache of {self.slots}")
            start = (0, 0, 0, 0)
            return dataclasses.replace(
                self,
                keys=jax.lax.dynamic_update_slice(self.keys, k.astype(self.keys.dtype), start),
                values=jax.lax.dynamic_update_slice(self.values, v.astype(self.keys.dtype), start),
            )
        kept = min(length, self.slots)
        slots = np.arange(length - kept, length) % self.slots
        return dataclasses.replace(
            self,
            keys=self.keys.at[:, slots].set(k[:, length - kept:].astype(self.keys.dtype)),
            values=self.values.at[:, slots].set(v[:, length - kept:].astype(self.keys.dtype)),
        )

    def insert(self, k: Array, v: Array, index: Array) -> LayerKV:
        """Write one step's keys [B, 1, K, H] for array index `index` (a traced scalar)."""
        slot = index % self.slots if self.ring else index
        start = (0, slot, 0, 0)
        return dataclasses.replace(
            self,
            keys=jax.lax.dynamic_update_slice(self.keys, k.astype(self.keys.dtype), start),
            values=jax.lax.dynamic_update_slice(self.values, v.astype(self.keys.dtype), start),
        )

    def slot_indices(self, index: Array) -> Array:
        """[S]: the array index each slot holds once `index` is written (negative: never written)."""
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
            shape = (batch, slots, cfg.num_key_value_heads, cfg.head_dim)
            layers.append(LayerKV(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype), ring))
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
