"""The SigLIP vision encoder of Gemma 3 (So400m/14; no pooling head).

Attribute names mirror the checkpoint after the `vision_tower.` prefix
(`encoder.layers[3].self_attn.q_proj`), so the weight map is near-identity.
Numerics follow transformers' eager SigLIP: LayerNorm, GELU and softmax run in fp32 and are
cast back once; matmuls take the parameter dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from gemma3.config import VisionConfig
from gemma3.nn.layers import contracted_axes, gelu_tanh, project

Array = jax.Array


def _normal(rngs: nnx.Rngs, shape, dtype) -> nnx.Param:
    return nnx.Param(0.02 * jax.random.normal(rngs.params(), shape, dtype))


class LayerNorm(nnx.Module):
    """Standard LayerNorm with bias (SigLIP does not use Gemma's RMSNorm)."""

    def __init__(self, dim: int, eps: float, *, dtype):
        self.weight = nnx.Param(jnp.ones((dim,), dtype))
        self.bias = nnx.Param(jnp.zeros((dim,), dtype))
        self.eps = eps

    def __call__(self, x: Array) -> Array:
        # torch's layer_norm upcasts half-precision inputs to fp32 and rounds once at the end.
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(x32 - mean), axis=-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + self.eps)
        y = y * self.weight[...].astype(jnp.float32) + self.bias[...].astype(jnp.float32)
        return y.astype(x.dtype)


class Dense(nnx.Module):
    """A linear map with bias, written as an einsum over named axes; the bias has the output's
    shape (e.g. [N, H] for a head-split query projection)."""

    def __init__(self, equation: str, shape: tuple[int, ...], bias_shape: tuple[int, ...], *,
                 dtype, rngs: nnx.Rngs):
        self.equation = equation
        self.in_axes = contracted_axes(equation)
        self.kernel = _normal(rngs, shape, dtype)
        self.bias = nnx.Param(jnp.zeros(bias_shape, dtype))

    def __call__(self, x: Array) -> Array:
        # Accumulate in fp32 and add the bias before the single rounding, as torch's addmm does.
        y = project(x, self.kernel[...], self.in_axes, out_dtype=jnp.float32)
        return (y + self.bias[...].astype(jnp.float32)).astype(x.dtype)


class PatchEmbedding(nnx.Module):
    """A conv with kernel = stride = patch size, VALID padding and a bias: one vector per patch."""

    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        p = cfg.patch_size
        self.kernel = _normal(rngs, (p, p, cfg.num_channels, cfg.hidden_size), dtype)  # HWIO
        self.bias = nnx.Param(jnp.zeros((cfg.hidden_size,), dtype))
        self.patch_size = p

    def __call__(self, pixels: Array) -> Array:
        """pixels [I, S, S, 3] (NHWC) -> [I, S/p, S/p, C]."""
        kernel = self.kernel[...]
        # Pixels take the weight dtype before the conv, as transformers casts them.
        y = jax.lax.conv_general_dilated(
            pixels.astype(kernel.dtype), kernel, (self.patch_size,) * 2, "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"), preferred_element_type=jnp.float32)
        return (y + self.bias[...].astype(jnp.float32)).astype(kernel.dtype)


class PositionEmbedding(nnx.Module):
    """One learned vector per patch (no CLS token, no interpolation)."""

    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        self.weight = _normal(rngs, (cfg.num_patches, cfg.hidden_size), dtype)


class Embeddings(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        self.patch_embedding = PatchEmbedding(cfg, dtype=dtype, rngs=rngs)
        self.position_embedding = PositionEmbedding(cfg, dtype=dtype, rngs=rngs)

    def __call__(self, pixels: Array) -> Array:
        """pixels [I, S, S, 3] (NHWC) -> [I, P, C], patches flattened row-major over (h, w)."""
        y = self.patch_embedding(pixels)
        y = y.reshape(y.shape[0], -1, y.shape[-1])
        return y + self.position_embedding.weight[...]


class SelfAttention(nnx.Module):
    """Full bidirectional multi-head attention over the patches, scale head_dim^-0.5."""

    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        c, n, h = cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim
        self.q_proj = Dense("IPC,NHC->IPNH", (n, h, c), (n, h), dtype=dtype, rngs=rngs)
        self.k_proj = Dense("IPC,NHC->IPNH", (n, h, c), (n, h), dtype=dtype, rngs=rngs)
        self.v_proj = Dense("IPC,NHC->IPNH", (n, h, c), (n, h), dtype=dtype, rngs=rngs)
        self.out_proj = Dense("IPNH,CNH->IPC", (c, n, h), (c,), dtype=dtype, rngs=rngs)
        self.scale = h**-0.5

    def __call__(self, x: Array) -> Array:
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        # Key patches use S. As in eager torch: q.k rounded to the activation dtype, times the
        # exact fp32 scale (a Python scalar; 72^-0.5 is not a bf16 number), rounded again.
        scores = jnp.einsum("IPNH,ISNH->INPS", q, k)
        scores = (scores.astype(jnp.float32) * self.scale).astype(x.dtype)
        probs = jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(x.dtype)  # fp32 softmax
        return self.out_proj(jnp.einsum("INPS,ISNH->IPNH", probs, v))


class MLP(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        c, f = cfg.hidden_size, cfg.intermediate_size
        self.fc1 = Dense("IPC,FC->IPF", (f, c), (f,), dtype=dtype, rngs=rngs)
        self.fc2 = Dense("IPF,CF->IPC", (c, f), (c,), dtype=dtype, rngs=rngs)

    def __call__(self, x: Array) -> Array:
        h = self.fc1(x)
        # torch evaluates tanh-GELU on bf16 in fp32 and rounds once.
        return self.fc2(gelu_tanh(h.astype(jnp.float32)).astype(h.dtype))


class EncoderLayer(nnx.Module):
    """Pre-LayerNorm transformer block."""

    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        self.layer_norm1 = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps, dtype=dtype)
        self.self_attn = SelfAttention(cfg, dtype=dtype, rngs=rngs)
        self.layer_norm2 = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps, dtype=dtype)
        self.mlp = MLP(cfg, dtype=dtype, rngs=rngs)

    def __call__(self, x: Array) -> Array:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        self.layers = nnx.List(
            [EncoderLayer(cfg, dtype=dtype, rngs=rngs) for _ in range(cfg.num_hidden_layers)])

    def __call__(self, x: Array) -> Array:
        for layer in self.layers:
            x = layer(x)
        return x


class VisionTower(nnx.Module):
    """pixel_values [I, 3, S, S] (as the transformers processor returns them) -> [I, P, C]."""

    def __init__(self, cfg: VisionConfig, *, dtype, rngs: nnx.Rngs):
        self.config = cfg
        self.embeddings = Embeddings(cfg, dtype=dtype, rngs=rngs)
        self.encoder = Encoder(cfg, dtype=dtype, rngs=rngs)
        self.post_layernorm = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps, dtype=dtype)

    def __call__(self, pixel_values: Array) -> Array:
        pixels = jnp.transpose(jnp.asarray(pixel_values), (0, 2, 3, 1))  # NCHW -> NHWC
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))
