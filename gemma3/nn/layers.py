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

from gemma3.runtime.cpu_tuning import pad_single_row

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


def project(x: Array, kernel: Array, in_axes: int, *, out_dtype=None) -> Array:
    """x [..., *in] with kernel [*out, *in] -> [..., *out], as one 2-D dot. Written as a
    multi-axis einsum, XLA transposed the weight inside every call.

    Inputs in the weight dtype, float32 accumulation, one rounding to out_dtype (default x's):
    what torch's bf16 Linear does, and the only form in which XLA:CPU makes no float32 copy
    of a bf16 weight. A 1-row dot (decode at batch 1) is padded to 2 rows for the same reason
    where gemma3.cpu_tuning says so."""
    lead, out = x.shape[:x.ndim - in_axes], kernel.shape[:kernel.ndim - in_axes]
    flat_kernel = kernel.reshape(math.prod(out), -1)
    rows = x.reshape(-1, flat_kernel.shape[1])
    pad = rows.shape[0] == 1 and pad_single_row(kernel.dtype)
    if pad:
        rows = jnp.concatenate([rows, jnp.zeros_like(rows)])
    y = jax.lax.dot_general(rows, flat_kernel, (((1,), (1,)), ((), ())),
                            preferred_element_type=jnp.float32)
    y = y[:1] if pad else y
    return y.astype(x.dtype if out_dtype is None else out_dtype).reshape(*lead, *out)


def take_rows(table: Array, ids: Array) -> Array:
    """table[ids] along axis 0. XLA:CPU gathers from a bf16 table by converting all of it to
    float32 first (1.2 GB for the 1b's 262144 rows); the same bits gathered as uint16 are not."""
    if table.dtype.itemsize != 2:
        return jnp.take(table, ids, axis=0)
    # Tied to the ids, the bitcast is not hoisted out of the decode loop, where XLA made it a
    # copy of the table.
    table, ids = jax.lax.optimization_barrier((table, ids))
    bits = jax.lax.bitcast_convert_type(table, jnp.uint16)
    return jax.lax.bitcast_convert_type(jnp.take(bits, ids, axis=0), table.dtype)


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
        return take_rows(table, ids) * scale

    def decode(self, x: Array) -> Array:
        return project(x, self.weight[...], 1)  # [B, T, D] x [V, D] -> [B, T, V]


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
