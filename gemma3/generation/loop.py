"""Generation: a compiled prefill, then one compiled decode loop (lax.while_loop, cache donated).

Prompts are left-padded to a length bucket and the cache to a size bucket, so new prompt lengths
and token budgets reuse compiled programs instead of recompiling.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemma3.config.errors import InputError
from gemma3.generation.sampling import Greedy
from gemma3.nn import checks
from gemma3.nn.cache import KVCache
from gemma3.nn.model import Gemma3
from gemma3.runtime.cpu_tuning import compiler_options

PROMPT_BUCKET_MIN = 32
NEW_TOKENS_BUCKET = 64
CACHE_BUCKET = 128
MAX_STOP_IDS = 8
STREAM_TOKENS = 1  # decode steps per call when tokens stream to on_token


class Carry(NamedTuple):
    """The decode loop's state, donated from one compiled call to the next."""

    step: jax.Array  # int32: tokens sampled so far (the next one's index in `out`)
    token: jax.Array  # [B] the last sampled token
    cache: KVCache
    positions: jax.Array  # [B] the RoPE position of `token`
    done: jax.Array  # [B] bool: the row has sampled a stop id
    out: jax.Array  # [B, budget] the tokens, pad after a row stops
    key: jax.Array  # the PRNG key of the next sample


@dataclasses.dataclass
class Timings:
    """Seconds spent, filled in by generate(): compile (first call per shape) and run."""

    prefill_compile: float = 0.0
    prefill: float = 0.0
    decode_compile: float = 0.0
    decode: float = 0.0
    prompt_tokens: int = 0
    new_tokens: int = 0


def generate(
    model,
    input_ids,
    attention_mask=None,
    *,
    max_new_tokens: int,
    sampler=None,
    stop_ids=None,
    seed: int = 0,
    pixel_values=None,
    token_type_ids=None,
    cache_length: int | None = None,
    on_token: Callable[[int, np.ndarray], None] | None = None,
    timings: Timings | None = None,
) -> np.ndarray:
    """New tokens [B, max_new_tokens]: each row stops after its first stop id, padded after it.

    input_ids [B, T] (left-padded; mask 1 = token, 0 = pad). stop_ids default to the config's
    eos ids (1 and 106 for instruction models); sampler defaults to Greedy().
    on_token(step, tokens[B]) streams tokens from inside the compiled loop. cache_length caps
    the KV cache; a prompt plus max_new_tokens that does not fit it, or the model's
    max_position_embeddings, is an error, never a truncation.
    """
    input_ids, attention_mask = _check_prompt(model, input_ids, attention_mask, max_new_tokens)
    _check_options(model, sampler, seed, cache_length, on_token, timings)
    checks.check_images(model.config, input_ids, pixel_values, token_type_ids)
    stop = _stop_array(model.config.eos_token_ids if stop_ids is None else
                       checks.check_stop_ids(stop_ids, model.config.text.vocab_size, MAX_STOP_IDS))
    sampler = Greedy() if sampler is None else sampler
    bucket, budget, length = bucket_sizes(input_ids.shape[1], max_new_tokens, cache_length)
    pad = bucket - input_ids.shape[1]
    input_ids = np.pad(input_ids, ((0, 0), (pad, 0)),
                       constant_values=model.config.text.pad_token_id)
    attention_mask = np.pad(attention_mask, ((0, 0), (pad, 0)))
    if token_type_ids is not None:
        token_type_ids = np.pad(np.asarray(token_type_ids), ((0, 0), (pad, 0)))
    graphdef, state = nnx.split(model)
    timings = timings if timings is not None else Timings()
    timings.prompt_tokens = int(attention_mask.sum(axis=1).max())

    logits, cache = _timed(_prefill, timings, "prefill", graphdef, state, input_ids,
                           attention_mask, pixel_values, token_type_ids, cache_length=length)
    positions = jnp.asarray(attention_mask.sum(axis=1), jnp.int32)
    pad_id = model.config.text.pad_token_id
    carry = _timed(_first_token, timings, "decode", graphdef, logits, cache, positions,
                   jax.random.key(seed), stop, sampler, budget=budget, pad_id=pad_id)
    carry = _decode(graphdef, state, carry, stop, sampler, max_new_tokens, pad_id, on_token,
                    timings)
    timings.new_tokens = int(carry.step)
    return np.asarray(carry.out)[:, :max_new_tokens]


def _decode(graphdef, state, carry, stop, sampler, max_new_tokens, pad_id, on_token, timings):
    """Runs the decode loop to max_new_tokens in one call, or with on_token in calls of
    STREAM_TOKENS steps, handing each call's new tokens to on_token. Streaming from the host
    keeps the program free of callbacks, which JAX's persistent compile cache cannot store."""
    step = 0
    while True:
        until = max_new_tokens if on_token is None else min(step + STREAM_TOKENS, max_new_tokens)
        if step:  # step 0 is the first token, sampled from the prefill's logits
            carry = _timed(_decode_loop, timings, "decode", graphdef, state, carry, stop,
                           jnp.asarray(until), sampler, pad_id=pad_id)
        reached = int(carry.step)
        if on_token is not None:
            tokens = np.asarray(carry.out)
            for i in range(step, reached):
                on_token(i, tokens[:, i])
        if reached >= max_new_tokens or bool(np.all(carry.done)):
            return carry
        step = reached


def bucket_sizes(prompt_length: int, max_new_tokens: int, cache_length: int | None = None
                 ) -> tuple[int, int, int]:
    """(padded prompt length, output width, cache length) generate() compiles for: each rounded
    up to a bucket, so other lengths reuse the programs; an explicit cache_length is kept
    exactly, the prompt then padded only as far as it allows."""
    bucket = max(PROMPT_BUCKET_MIN, 1 << (prompt_length - 1).bit_length())
    budget = _round_up(max_new_tokens, NEW_TOKENS_BUCKET)  # the loop stops at max_new_tokens
    if cache_length is None:
        return bucket, budget, _round_up(bucket + budget, CACHE_BUCKET)
    if prompt_length + max_new_tokens > cache_length:
        raise InputError(f"prompt of {prompt_length} tokens + max_new_tokens {max_new_tokens} "
                         f"does not fit cache_length {cache_length}")
    return min(bucket, cache_length - max_new_tokens), budget, cache_length


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _stop_array(stop_ids) -> np.ndarray:
    """Stop ids in a fixed-size array (-1 fills), so their number does not change shapes."""
    stop_ids = list(stop_ids)
    return np.asarray(stop_ids + [-1] * (MAX_STOP_IDS - len(stop_ids)), np.int32)


def prefill(model, input_ids, attention_mask, *, cache_length: int, pixel_values=None,
            token_type_ids=None):
    """Compiled prefill into a fresh cache: (last-position logits [B, V], cache)."""
    graphdef, state = nnx.split(model)
    return _prefill(graphdef, state, input_ids, attention_mask, pixel_values, token_type_ids,
                    cache_length=cache_length)


def decode_step(model, tokens, positions, cache):
    """One compiled decode step, tokens and positions [B, 1]: (logits [B, V], cache)."""
    graphdef, state = nnx.split(model)
    return _decode_step(graphdef, state, tokens, positions, cache)


@partial(jax.jit, static_argnums=0, donate_argnums=4)
def _decode_step(graphdef, state, tokens, positions, cache):
    return nnx.merge(graphdef, state).decode(tokens, positions, cache)


def _check_prompt(model, input_ids, attention_mask, max_new_tokens):
    """The prompt as int32 numpy arrays, left-padded, fitting the model's context."""
    if not isinstance(model, Gemma3):
        raise TypeError(f"model must be a gemma3.Gemma3 (from gemma3.from_pretrained), got "
                        f"{type(model).__name__}")
    ids = checks.check_token_ids(input_ids, model.config.text.vocab_size)
    mask = checks.check_attention_mask(attention_mask, ids.shape)
    checks.check_left_padded(mask)
    max_new_tokens = checks.check_int("max_new_tokens", max_new_tokens, minimum=1)
    longest = int(mask.sum(axis=1).max())
    limit = model.config.text.max_position_embeddings
    if longest + max_new_tokens > limit:
        raise InputError(f"prompt of {longest} tokens + max_new_tokens {max_new_tokens} exceeds "
                         f"the model's max_position_embeddings {limit}")
    return ids, mask


def _check_options(model, sampler, seed, cache_length, on_token, timings) -> None:
    if sampler is not None:
        checks.check_sampler(sampler, model.config.text.vocab_size)
    checks.check_int("seed", seed, -(2**63), 2**63 - 1)  # what jax.random.key accepts
    if cache_length is not None:
        checks.check_int("cache_length", cache_length, minimum=1)
    if on_token is not None and not callable(on_token):
        raise TypeError(f"on_token must be a function on_token(step, tokens), got "
                        f"{type(on_token).__name__}")
    if timings is not None and not isinstance(timings, Timings):
        raise TypeError(f"timings must be a gemma3.generation.loop.Timings, got "
                        f"{type(timings).__name__}")


_COMPILED: dict = {}


def _timed(fn, timings: Timings, name: str, graphdef, *args, **static):
    """Runs fn's compiled program for these shapes, compiling it first if this is a new shape
    bucket; compile and run times are recorded apart."""
    leaves, treedef = jax.tree.flatten(args)
    key = (fn, graphdef, treedef, tuple(sorted(static.items(), key=lambda kv: kv[0])),
           tuple((np.shape(x), str(getattr(x, "dtype", type(x))), getattr(x, "sharding", None))
                 for x in leaves))
    start = time.perf_counter()
    compiled = _COMPILED.get(key)
    if compiled is None:
        # Per-program XLA options for this CPU (gemma3.runtime.cpu_tuning's table; {} elsewhere).
        options = compiler_options(name, getattr(weight_dtype(args), "name", None))
        compiled = _COMPILED[key] = fn.lower(graphdef, *args, **static).compile(
            compiler_options=options or None)
    mid = time.perf_counter()
    result = jax.block_until_ready(compiled(*args))
    end = time.perf_counter()
    setattr(timings, f"{name}_compile", getattr(timings, f"{name}_compile") + mid - start)
    setattr(timings, name, getattr(timings, name) + end - mid)
    return result


def weight_dtype(args):
    """The weights' dtype, from the first floating leaf of the model state (args[0])."""
    for leaf in jax.tree.leaves(args[0]):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.dtype
    return None


@partial(jax.jit, static_argnums=0, static_argnames="cache_length")
def _prefill(graphdef, state, input_ids, attention_mask, pixel_values, token_type_ids, *,
             cache_length):
    model = nnx.merge(graphdef, state)
    cache = KVCache.create(model.config.text, input_ids.shape[0], cache_length, model.dtype)
    return model.prefill(input_ids, attention_mask, cache, pixel_values, token_type_ids)


@partial(jax.jit, static_argnums=0, static_argnames=("budget", "pad_id"), donate_argnums=2)
def _first_token(graphdef, logits, cache, positions, key, stop_ids, sampler, *, budget, pad_id):
    """The decode loop's Carry after the first token, sampled from the prefill's logits.
    graphdef: unused, it keys the compiled program as for the others."""
    del graphdef
    batch = logits.shape[0]
    key, sub = jax.random.split(key)
    first = sampler(logits.astype(jnp.float32), sub)
    out = jnp.full((batch, budget), pad_id).at[:, 0].set(first)
    done = jnp.isin(first, stop_ids)
    return Carry(jnp.asarray(1), first, cache, positions, done, out, key)


@partial(jax.jit, static_argnums=0, static_argnames="pad_id", donate_argnums=2)
def _decode_loop(graphdef, state, carry, stop_ids, until, sampler, *, pad_id):
    """Samples tokens from the carry's step up to `until` (<= budget, the static output width)
    or until every row has stopped; returns the carry."""
    model = nnx.merge(graphdef, state)

    def cond(c: Carry):
        return (c.step < until) & ~jnp.all(c.done)

    def body(c: Carry) -> Carry:
        logits, cache = model.decode(c.token[:, None], c.positions[:, None], c.cache)
        key, sub = jax.random.split(c.key)
        token = jnp.where(c.done, pad_id, sampler(logits.astype(jnp.float32), sub))
        return Carry(c.step + 1, token, cache, c.positions + 1,
                     c.done | jnp.isin(token, stop_ids), c.out.at[:, c.step].set(token), key)

    # The carry (cache included) is donated: the loop updates it in place.
    return jax.lax.while_loop(cond, body, carry)
