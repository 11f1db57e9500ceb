"""Gemma 3 self-attention: GQA, QK-norm before RoPE, scale query_pre_attn_scalar^-0.5."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from gemma3.cache import LayerKV
from gemma3.config import TextConfig
from gemma3.layers import Projection, RMSNorm
from gemma3.rope import apply_rope

Array = jax.Array


class Attention(nnx.Module):
    def __init__(self, cfg: TextConfig, *, dtype, rngs: nnx.Rngs):
        d, n, k, h = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = Projection("BTD,DNH->BTNH", (d, n, h), dtype=dtype, rngs=rngs)
        self.k_proj = Projection("BSD,DKH->BSKH", (d, k, h), dtype=dtype, rngs=rngs)
        self.v_proj = Projection("BSD,DKH->BSKH", (d, k, h), dtype=dtype, rngs=rngs)
        self.o_proj = Projection("BTNH,NHD->BTD", (n, h, d), dtype=dtype, rngs=rngs)
        self.q_norm = RMSNorm(h, cfg.rms_norm_eps, dtype=dtype)
        self.k_norm = RMSNorm(h, cfg.rms_norm_eps, dtype=dtype)
        self.scale = cfg.attention_scale
        self.num_kv_heads = k

    def __call__(
        self,
        x: Array,
        rope: tuple[Array, Array],
        mask: Array,
        cache: LayerKV | None = None,
        write_index: Array | None = None,
    ) -> tuple[Array, LayerKV | None]:
        """x [B, T, D]; mask [B, T, S]. Without a cache the keys are this call's own (S = T).
        With a cache and no write_index (prefill) the keys are still this call's own, and they
        are also written to the cache; with write_index (decode) they are inserted first and
        attention runs over the cache's slots."""
        cos, sin = rope
        # QK-norm comes before RoPE; v is not normalised.
        q = apply_rope(self.q_norm(self.q_proj(x)), cos, sin)
        k = apply_rope(self.k_norm(self.k_proj(x)), cos, sin)
        v = self.v_proj(x)
        if cache is not None and write_index is None:
            cache = cache.prefill(k, v)
        elif cache is not None:
            cache = cache.insert(k, v, write_index)
            k, v = cache.keys.astype(q.dtype), cache.values.astype(q.dtype)
        return self.o_proj(self._attend(q, k, v, mask)), cache

    def _attend(self, q: Array, k: Array, v: Array, mask: Array) -> Array:
        b, t, n, h = q.shape
        q = q.reshape(b, t, self.num_kv_heads, n // self.num_kv_heads, h)  # query head n -> kv n//G
        scores = jnp.einsum("BTKGH,BSKH->BKGTS", q, k).astype(jnp.float32)
        # The scale multiplies in fp32 and rounds once to the activation dtype, as torch does
        # with a Python float (168**-0.5 for the 27b is not a bf16 number).
        scores = (scores * self.scale).astype(q.dtype).astype(jnp.float32)
        # Softmax in fp32; a finite fill keeps fully masked (padding) rows free of NaN.
        scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
        out = jnp.einsum("BKGTS,BSKH->BTKGH", probs, v)
        return out.reshape(b, t, n, h)
