"""Sampling strategies: tiny frozen (hashable, so jit-static) objects, logits [B, V] -> ids [B]."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Greedy:
    def __call__(self, logits: jax.Array, key: jax.Array) -> jax.Array:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class Temperature:
    temperature: float = 1.0

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature} (use Greedy())")

    def __call__(self, logits, key):
        return jax.random.categorical(key, logits / self.temperature, axis=-1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class TopK:
    """Sample among the k most likely tokens."""

    k: int
    temperature: float = 1.0

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"top-k needs k >= 1, got {self.k}")
        Temperature(self.temperature)

    def __call__(self, logits, key):
        values, indices = jax.lax.top_k(logits, self.k)
        choice = jax.random.categorical(key, values / self.temperature, axis=-1)
        return jnp.take_along_axis(indices, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class TopP:
    """Nucleus sampling: the smallest set of tokens whose probability reaches p."""

    p: float
    temperature: float = 1.0

    def __post_init__(self):
        if not 0 < self.p <= 1:
            raise ValueError(f"top-p needs 0 < p <= 1, got {self.p}")
        Temperature(self.temperature)

    def __call__(self, logits, key):
        logits = logits / self.temperature
        order = jnp.argsort(-logits, axis=-1)
        sorted_logits = jnp.take_along_axis(logits, order, axis=-1)
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        # Keep a token if the mass before it is below p (so the top token is always kept).
        keep = (jnp.cumsum(probs, axis=-1) - probs) < self.p
        choice = jax.random.categorical(key, jnp.where(keep, sorted_logits, -jnp.inf), axis=-1)
        return jnp.take_along_axis(order, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)


def make_sampler(temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None):
    """The strategy for CLI-style options: temperature 0 means greedy."""
    if temperature == 0:
        if top_k or top_p:
            raise ValueError("top_k/top_p need a temperature > 0; temperature 0 is greedy")
        return Greedy()
    if top_k and top_p:
        raise ValueError("choose one of top_k and top_p")
    if top_k:
        return TopK(top_k, temperature)
    if top_p:
        return TopP(top_p, temperature)
    return Temperature(temperature)
