"""What the machine can do, measured in the bench's own run with the bench's threads, and the
fraction of it each row reaches.

- Decode is bound by memory bandwidth: each step reads every weight once (the tied embedding
  whole, as the output head; the input lookup's one row per token is left out) and, per
  sequence, the KV cache of the positions each layer attends. Fraction = bytes per step x
  steps/s / the read bandwidth (a reduction over a 1 GiB array).
- Prefill is bound by the matmul rate: 2 FLOPs per layer weight per token, the output head once
  (generate computes the last position's logits only), plus attention's QK^T and PV over the
  positions each layer attends (causal: on average half the prompt, at most the sliding
  window). Fraction = FLOPs per token x tokens/s / the dense matmul
  rate of the row's dtype (a 2048-square dot), the faster of JAX and torch.
"""

from __future__ import annotations

import time

from gemma3.config import DTYPES, GLOBAL, TextConfig

ARRAY_BYTES = 2**30  # the bandwidth probe's array: far beyond any cache
MATMUL_SIZE = 2048  # the largest square dot timed
MATMUL_SECONDS = 0.05
KV_ITEMSIZE = {"float16": 2}  # a cache dtype of llama.cpp's that gemma3 does not run in


def attended(layer_type: str, position: int, window: int) -> int:
    """Positions a query at `position` (0-based) attends in a layer of that type."""
    return position + 1 if layer_type == GLOBAL else min(position + 1, window)


def decode_bytes_per_step(text: TextConfig, dtype: str, context: int, batch: int,
                          weight_bytes: int | None = None) -> int:
    """Bytes one decode step reads with `context` positions already in the cache: the weights
    (in `dtype`, or `weight_bytes` where they are stored otherwise, as a quantized file) and
    the attended cache in `dtype`."""
    item = KV_ITEMSIZE.get(dtype) or DTYPES[dtype].itemsize
    per_position = 2 * text.num_key_value_heads * text.head_dim * item  # K and V
    kv = sum(attended(t, context, text.sliding_window) for t in text.layer_types) * per_position
    weights = text.num_params() * item if weight_bytes is None else weight_bytes
    return weights + batch * kv


def prefill_flops_per_token(text: TextConfig, length: int) -> float:
    """Average FLOPs per token of a prompt of `length` tokens, as both sides' generate runs it:
    every layer's matrices for every token, the output head once (only the last position's
    logits are computed), attention over the attended positions."""
    head = text.vocab_size * text.hidden_size  # the tied embedding: a lookup per token
    layers = 2 * (text.num_params() - head - text.hidden_size)
    positions = sum(attended(t, p, text.sliding_window)
                    for t in text.layer_types for p in range(length)) / length
    attention = 2 * 2 * text.num_attention_heads * text.head_dim * positions
    return layers + attention + 2 * head / length


def decode_fraction(text: TextConfig, dtype: str, tokens_per_s: float, batch: int,
                    context: int, bandwidth: float, weight_bytes: int | None = None) -> float:
    steps_per_s = tokens_per_s / batch
    step = decode_bytes_per_step(text, dtype, context, batch, weight_bytes)
    return step * steps_per_s / bandwidth


def prefill_fraction(text: TextConfig, length: int, tokens_per_s: float,
                     matmul_rate: float) -> float:
    return prefill_flops_per_token(text, length) * tokens_per_s / matmul_rate


def best_time(run, repeats: int = 5) -> float:
    """Fastest of `repeats` calls after one warm-up (which compiles or allocates)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_jax(dtype: str) -> dict:
    """JAX's read bandwidth and its dense matmul rate in `dtype` (the process's threads)."""
    import jax
    import jax.numpy as jnp

    def read_rate() -> float:
        x = jnp.ones(ARRAY_BYTES // 4, jnp.float32)
        total = jax.jit(jnp.sum)
        return ARRAY_BYTES / best_time(lambda: total(x).block_until_ready())

    dot = jax.jit(lambda p, q: jnp.dot(p, q, preferred_element_type=jnp.float32))

    def seconds(n: int) -> float:
        a = jnp.ones((n, n), jnp.dtype(dtype))
        return best_time(lambda: dot(a, a).block_until_ready(), 3)

    return {"bandwidth_bytes_per_s": read_rate(), "matmul_flops_per_s": matmul_rate(seconds)}


def measure_torch(dtype: str) -> dict:
    """torch's read bandwidth and its dense matmul rate in `dtype` (the process's threads)."""
    import torch

    def read_rate() -> float:
        x = torch.ones(ARRAY_BYTES // 4, dtype=torch.float32)
        return ARRAY_BYTES / best_time(lambda: x.sum().item())

    def seconds(n: int) -> float:
        a = torch.ones((n, n), dtype=getattr(torch, dtype))
        return best_time(lambda: torch.mm(a, a), 3)

    return {"bandwidth_bytes_per_s": read_rate(), "matmul_flops_per_s": matmul_rate(seconds)}


def matmul_rate(seconds) -> float:
    """FLOP/s of the first square size from 256 up to MATMUL_SIZE whose dot takes at least
    MATMUL_SECONDS (a kernel that slow is measured well at that size; torch's bf16 dot on a CPU
    without AVX-512 BF16 runs at ~0.3 GFLOP/s, a minute per 2048-square dot)."""
    n = 256
    while True:
        took = seconds(n)
        if took >= MATMUL_SECONDS or n >= MATMUL_SIZE:
            return 2 * n**3 / took
        n *= 2


def machine_limits(runs: list[dict]) -> dict:
    """The machine's limits from every child's own measurement: the highest bandwidth any side
    read, and per dtype the faster side's matmul rate."""
    bandwidth, rates = 0.0, dict[str, float]()
    for r in runs:
        if "limits" in r:
            bandwidth = max(bandwidth, r["limits"]["bandwidth_bytes_per_s"])
            rates[r["dtype"]] = max(rates.get(r["dtype"], 0.0), r["limits"]["matmul_flops_per_s"])
    return {"bandwidth_bytes_per_s": bandwidth, "matmul_flops_per_s": rates}
