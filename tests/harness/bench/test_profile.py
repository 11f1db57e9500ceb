"""The profile's operation kinds, read off the real compiled programs of a tiny model: every
layer's seven weight products and the one output head are found in the prompt pass and in the
decode loop (where the weights are what the loop carries unchanged), whatever XLA:CPU fused
around them. No timing here."""

import collections

import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemma3.generation import loop
from gemma3.nn.model import Gemma3
from harness.bench import profile
from tests.support.gguf_fixtures import tiny_config


def test_each_layer_has_seven_weight_products_its_attention_products_and_one_head():
    config = tiny_config()
    text = config.text
    model = Gemma3(config, dtype=jnp.float32, rngs=nnx.Rngs(0))
    loop.generate(model, np.arange(3, 35)[None], max_new_tokens=3, stop_ids=[])
    graphdef = nnx.split(model)[0]
    programs = {key[0]: compiled for key, compiled in loop._COMPILED.items()
                if key[1] == graphdef}
    layers = len(text.layer_types)
    for fn in (loop._prefill, loop._decode_loop):
        kinds = collections.Counter(
            profile.operation_kinds(programs[fn].as_text(), text.vocab_size).values())
        assert kinds["weight products"] == 7 * layers, fn  # q, k, v, o, gate, up, down
        assert kinds["output head"] == 1, fn
        assert kinds["attention products"] >= 2 * layers, fn  # QK^T and PV at least
        assert kinds["reductions"] >= 2 * layers, fn  # the norms and the softmax at least
        assert set(kinds) <= set(profile.KINDS)
