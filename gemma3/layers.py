"""Small building blocks of the decoder: RMSNorm, einsum projections, the scaled embedding, GeGLU.

Axis alphabet, used in every einsum string of this package:
  B batch, T query length, S key length, D model width, N query heads, K kv heads,
  G query heads per kv head, H head dim, F MLP hidden width, V vocabulary, P image patches,
  C vision width, I images.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array


class RMSNorm(nnx.Module):
    """Gemma's RMSNorm: weights are offsets from 1, and the whole computation runs in fp32."""

    def __init__(self, dim: int, eps: float, *, dtype, rngs: nnx.Rngs | None = None):
        self.weight = nnx.Param(jnp.zeros((dim,), dtype))
        self.eps = eps

    def __call__(self, x: Array) -> Array:
        # (1 + w) multiplied in fp32 before the cast back, as transformers does (not Llama's order).
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (normed * (1.0 + self.weight[...].astype(jnp.float32))).astype(x.dtype)


def contracted_axes(equation: str) -> int:
    """How many trailing axes an `x,kernel->out` projection contracts; the kernel must list its
    output axes first and the contracted ones last, in x's order ('BTNH,DNH->BTD': 2)."""
    x_axes, kernel_axes = equation.split("->")[0].split(",")
    n = len([a for a in kernel_axes if a in x_axes])
    if x_axes[len(x_axes) - n:] != kernel_axes[len(kernel_axes) - n:]:
        raise ValueError(f"{equation}: the kernel's contracted axes must come last, as in x")
    return n


def project(x: Array, kernel: Array, in_axes: int, **dot_options) -> Array:
    """x [..., *in] with kernel [*out, *in] -> [..., *out], as one 2-D dot. Written as a
    multi-axis einsum, XLA transposed the weight inside every call."""
    lead, out = x.shape[:x.ndim - in_axes], kernel.shape[:kernel.ndim - in_axes]
    flat_kernel = kernel.reshape(math.prod(out), -1)
    y = jnp.einsum("...i,oi->...o", x.reshape(*lead, -1), flat_kernel, **dot_options)
    return y.reshape(*lead, *out)


class Projection(nnx.Module):
    """A bias-free linear map; `equation` names its axes (see the alphabet above).

    Kernels keep torch's [out, in] order (output axes first, the contracted ones last): the
    layout XLA's dots want, so no program transposes a weight, and loading is a copy."""

    def __init__(self, equation: str, shape: tuple[int, ...], *, dtype, rngs: nnx.Rngs):
        self.equation = equation
        self.in_axes = contracted_axes(equation)
        self.kernel = nnx.Param(0.02 * jax.random.normal(rngs.params(), shape, dtype))

    def __call__(self, x: Array) -> Array:
        return project(x, self.kernel[...], self.in_axes)


class Embedder(nnx.Module):
    """Token embedding, scaled by sqrt(D) on the way in; its transpose is the tied output head."""

    def __init__(self, vocab_size: int, width: int, *, dtype, rngs: nnx.Rngs):
        self.weight = nnx.Param(0.02 * jax.random.normal(rngs.params(), (vocab_size, width), dtype))

    def encode(self, ids: Array) -> Array:
        table = self.weight[...]
        # The scale is rounded to the activation dtype first (sqrt(1152) becomes 34.0 in bf16).
        scale = jnp.asarray(table.shape[1] ** 0.5, dtype=table.dtype)
        # Ids beyond the table (the image soft token with a 262144-row table) look up row 0;
        # their rows are overwritten by image features anyway.
        ids = jnp.where(ids < table.shape[0], ids, 0)
        return jnp.take(table, ids, axis=0) * scale

    def decode(self, x: Array) -> Array:
        return jnp.einsum("BTD,VD->BTV", x, self.weight[...])


def gelu_tanh(x: Array) -> Array:
    # gelu_pytorch_tanh: the tanh approximation, not the erf form.
    return jax.nn.gelu(x, approximate=True)


class MLP(nnx.Module):
    """GeGLU feed-forward: down(gelu_tanh(gate(x)) * up(x))."""

    def __init__(self, width: int, hidden: int, *, dtype, rngs: nnx.Rngs):
        self.gate_proj = Projection("BTD,FD->BTF", (hidden, width), dtype=dtype, rngs=rngs)
        self.up_proj = Projection("BTD,FD->BTF", (hidden, width), dtype=dtype, rngs=rngs)
        self.down_proj = Projection("BTF,DF->BTD", (width, hidden), dtype=dtype, rngs=rngs)

    def __call__(self, x: Array) -> Array:
        return self.down_proj(gelu_tanh(self.gate_proj(x)) * self.up_proj(x))
