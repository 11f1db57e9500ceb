"""Child of test_memory_bf16: peak RSS of loading a checkpoint and running a prefill and a
decode loop, in a fresh process. Prints one JSON line.

The programs are compiled from the model's abstract shapes before any weight is loaded, and
the baseline RSS is taken after that, so the growth measured is what holding and running the
weights costs (no compiler memory).

  python tests/memory_child.py CHECKPOINT DTYPE [--batch B] [--prompt T] [--new-tokens N]
"""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemma3.ckpt.loading import from_pretrained, load_config, resolve_dtype
from gemma3.generation import loop as generation
from gemma3.generation.sampling import Greedy
from gemma3.nn.cache import cache_bytes
from gemma3.nn.model import Gemma3
from harness.memory.measure import peak_rss, reset_peak


def current_rss() -> int:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def compile_programs(directory, dtype, batch, prompt, budget, cache_length):
    config = load_config(Path(directory))
    model = nnx.eval_shape(lambda: Gemma3(config, dtype=dtype, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    ids = jax.ShapeDtypeStruct((batch, prompt), jnp.int32)
    prefill = generation._prefill.lower(graphdef, state, ids, ids, None, None,
                                        cache_length=cache_length).compile()
    logits, cache = jax.eval_shape(
        lambda s, i: generation._prefill(graphdef, s, i, i, None, None,
                                         cache_length=cache_length), state, ids)
    vector, stop = jax.ShapeDtypeStruct((batch,), jnp.int32), np.full(8, -1, np.int32)
    first_args = (logits, cache, vector, jax.random.key(0), stop, Greedy())
    first = generation._first_token.lower(graphdef, *first_args, budget=budget,
                                          pad_id=0).compile()
    carry = jax.eval_shape(lambda *a: generation._first_token(graphdef, *a, budget=budget,
                                                              pad_id=0), *first_args)
    loop = generation._decode_loop.lower(graphdef, state, carry, stop, jnp.asarray(budget),
                                         Greedy(), pad_id=0).compile()

    def decode(state, logits, cache, positions, key, stop, until, sampler):
        return loop(state, first(logits, cache, positions, key, stop, sampler), stop, until,
                    sampler)

    return config, prefill, decode


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("dtype")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=64)
    args = p.parse_args()
    dtype = resolve_dtype(args.dtype)
    cache_length = generation.bucket_sizes(args.prompt, args.new_tokens)[2]
    config, prefill, decode = compile_programs(args.checkpoint, dtype, args.batch, args.prompt,
                                               args.new_tokens, cache_length)
    gc.collect()
    base = current_rss()
    reset_peak()
    model = from_pretrained(args.checkpoint, dtype=args.dtype, progress=False)
    loaded = peak_rss()
    _, state = nnx.split(model)
    ids = np.random.default_rng(0).integers(3, config.text.vocab_size, (args.batch, args.prompt))
    mask = np.ones_like(ids)
    logits, cache = jax.block_until_ready(prefill(state, ids.astype(np.int32), mask.astype(np.int32),
                                                  None, None))
    prefilled = peak_rss()
    positions = jnp.full((args.batch,), args.prompt, jnp.int32)
    out = decode(state, logits, cache, positions, jax.random.key(0), np.full(8, -1, np.int32),
                 jnp.asarray(args.new_tokens), Greedy())
    jax.block_until_ready(out)
    print(json.dumps({
        "params": config.num_params(), "itemsize": dtype.itemsize, "base_rss": base,
        "load_peak": loaded - base, "prefill_peak": prefilled - base,
        "decode_peak": peak_rss() - base,
        "cache_bytes": cache_bytes(config.text, args.batch, cache_length, dtype),
        "logits_bytes": args.batch * config.text.vocab_size * 4}))


if __name__ == "__main__":
    main()
