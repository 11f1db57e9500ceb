"""Sampling strategies: tiny frozen objects, logits [B, V] -> ids [B].

They are pytrees whose numbers (temperature, p) are data, so one compiled decode loop serves
every temperature; only the strategy's kind (and top-k's k, a shape) selects another program.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import SupportsFloat, cast

import jax
import jax.numpy as jnp

from gemma3.config.errors import InputError


def _check(condition, value, message: str) -> None:
    # Inside jit (and while jax rebuilds the pytree) the fields are tracers or placeholders, not
    # numbers; they were checked when the object was made.
    if isinstance(value, (str, bytes, bool)):
        raise TypeError(f"{message}; got {type(value).__name__} {value!r}")
    # numbers.Number declares no float conversion, hence the cast (for mypy only: a complex
    # value still reaches isfinite and raises its TypeError there, as it always did).
    if isinstance(value, numbers.Number) and not (math.isfinite(cast(SupportsFloat, value))
                                                  and condition(value)):
        raise InputError(f"{message}; got {value}")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Greedy:
    def __call__(self, logits: jax.Array, key: jax.Array) -> jax.Array:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Temperature:
    temperature: float = 1.0

    def __post_init__(self):
        _check(lambda t: t > 0, self.temperature,
               "temperature must be a finite number > 0 (for greedy decoding use Greedy())")

    def __call__(self, logits, key):
        return jax.random.categorical(key, logits / self.temperature, axis=-1).astype(jnp.int32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TopK:
    """Sample among the k most likely tokens."""

    k: int = dataclasses.field(metadata={"static": True})
    temperature: float = 1.0

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral):
            raise TypeError(f"top-k needs an integer k >= 1; got {type(self.k).__name__} "
                            f"{self.k!r}")  # k is static (a shape), so always a Python value
        _check(lambda k: k >= 1, self.k, "top-k needs k >= 1")
        object.__setattr__(self, "k", int(self.k))  # a plain int: it keys compiled programs
        Temperature(self.temperature)

    def __call__(self, logits, key):
        values, indices = jax.lax.top_k(logits, self.k)
        choice = jax.random.categorical(key, values / self.temperature, axis=-1)
        return jnp.take_along_axis(indices, choice[:, None], axis=-1)[:, 0].astype(jnp.int32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TopP:
    """Nucleus sampling: the smallest set of tokens whose probability reaches p."""

    p: float
    temperature: float = 1.0

    def __post_init__(self):
        _check(lambda p: 0 < p <= 1, self.p, "top-p needs 0 < p <= 1")
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
        if top_k is not None or top_p is not None:
            raise InputError("top_k/top_p need a temperature > 0; temperature 0 is greedy")
        return Greedy()
    if top_k is not None and top_p is not None:
        raise InputError("choose one of top_k and top_p")
    if top_k is not None:
        return TopK(top_k, temperature)
    if top_p is not None:
        return TopP(top_p, temperature)
    return Temperature(temperature)
