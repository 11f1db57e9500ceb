"""Gemma 3 self-attention: GQA, QK-norm before RoPE, scale query_pre_attn_scalar^-0.5."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from gemma3.config import TextConfig
from gemma3.nn.cache import LayerKV
from gemma3.nn.layers import Projection, RMSNorm
from gemma3.nn.rope import apply_rope

Array = jax.Array


class Attention(nnx.Module):
    def __init__(self, cfg: TextConfig, *, dtype, rngs: nnx.Rngs):
        d, n, k, h = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = Projection("BTD,NHD->BTNH", (n, h, d), dtype=dtype, rngs=rngs)
        self.k_proj = Projection("BSD,KHD->BSKH", (k, h, d), dtype=dtype, rngs=rngs)
        self.v_proj = Projection("BSD,KHD->BSKH", (k, h, d), dtype=dtype, rngs=rngs)
        self.o_proj = Projection("BTNH,DNH->BTD", (d, n, h), dtype=dtype, rngs=rngs)
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
        are also written to the cache. With write_index (decode, T = 1) attention runs over
        the cache's slots as they were (mask [B, 1, S] says which are visible) plus this
        step's own key, which is then written at write_index."""
        cos, sin = rope
        # QK-norm comes before RoPE; v is not normalised.
        q = apply_rope(self.q_norm(self.q_proj(x)), cos, sin)
        k = apply_rope(self.k_norm(self.k_proj(x)), cos, sin)
        # The cache's layouts: keys [B, K, S, H], values [B, K, H, S].
        k, v = k.transpose(0, 2, 1, 3), self.v_proj(x).transpose(0, 2, 3, 1)
        if cache is None:
            return self._attend(q, k, v, mask), None
        if write_index is None:
            return self._attend(q, k, v, mask), cache.prefill(k, v)
        # Attention reads the old slots plus this step's key, then the key is written: XLA:CPU
        # copied each cache buffer twice per step this way and four times when attending over
        # the updated cache (batch 1, one kv head).
        out = self._attend(q, cache.keys.astype(q.dtype), cache.values.astype(q.dtype), mask,
                           new=(k, v))
        return out, cache.insert(k, v, write_index)

    def _attend(self, q: Array, k: Array, v: Array, mask: Array, new=None) -> Array:
        """q [B, T, N, H]; k [B, K, S, H]; v [B, K, H, S]; mask [B, T, S] -> [B, T, D].
        `new` (keys [B, K, T, H], values [B, K, H, T]) are extra keys every query sees."""
        b, t, n, h = q.shape
        # Queries [B, K, G, T, H] (query head n -> kv head n // G), so the score dot's output is
        # already [B, K, G, T, S]: with [B, T, K, G, H] XLA:CPU transposed every layer's scores.
        q = q.reshape(b, t, self.num_kv_heads, n // self.num_kv_heads, h).transpose(0, 2, 3, 1, 4)
        scores = _dot("BKGTH,BKSH->BKGTS", q, k)
        if new is not None:
            scores = jnp.concatenate([scores, _dot("BKGTH,BKSH->BKGTS", q, new[0])], -1)
            mask = jnp.concatenate([mask, jnp.ones(mask.shape[:2] + (t,), bool)], -1)
        # The scale multiplies in fp32 and rounds once to the activation dtype, as torch does
        # with a Python float (168**-0.5 for the 27b is not a bf16 number).
        scores = (scores.astype(jnp.float32) * self.scale).astype(q.dtype).astype(jnp.float32)
        # Softmax in fp32; a finite fill keeps fully masked (padding) rows free of NaN.
        scores = jnp.where(mask[:, None, None], scores, jnp.finfo(jnp.float32).min)
        probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
        if new is None:
            out = _dot("BKGTS,BKHS->BKGTH", probs, v)
        else:
            slots = k.shape[2]
            out = (_dot("BKGTS,BKHS->BKGTH", probs[..., :slots], v)
                   + _dot("BKGTS,BKHS->BKGTH", probs[..., slots:], new[1]))
        return self.o_proj(out.transpose(0, 3, 1, 2, 4).reshape(b, t, n, h))


def _dot(equation: str, a: Array, b: Array) -> Array:
    """An einsum in the inputs' dtype with float32 accumulation, rounded once (torch's bf16
    matmul); XLA:CPU then makes no float32 copy of the cache it reads."""
    return jnp.einsum(equation, a, b, preferred_element_type=jnp.float32).astype(a.dtype)
