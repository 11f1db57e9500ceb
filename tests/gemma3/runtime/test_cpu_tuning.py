"""The CPU tuning table: choices keyed by CPU flags, and what the dots do with them."""

import jax
import jax.numpy as jnp
import numpy as np

from gemma3.nn.layers import project
from gemma3.runtime import cpu_tuning


def test_first_row_whose_flags_the_cpu_has_wins(monkeypatch):
    monkeypatch.setattr(cpu_tuning, "cpu_flags", lambda: frozenset({"avx2"}))
    monkeypatch.setattr(cpu_tuning, "CHOICES", (
        (("amx_bf16",), {("prefill", "bfloat16"): {"a": 1}}),
        (("avx2",), {("prefill", "float32"): cpu_tuning.ONEDNN_OPTIONS}),
        ((), {}),
    ))
    assert cpu_tuning.compiler_options("prefill", "float32") == cpu_tuning.ONEDNN_OPTIONS
    assert cpu_tuning.compiler_options("prefill", "bfloat16") == {}
    assert cpu_tuning.compiler_options("decode", "float32") == {}


def test_one_row_bf16_dot_is_padded_and_makes_no_float32_copy_of_the_weight():
    assert cpu_tuning.pad_single_row(jnp.bfloat16) and not cpu_tuning.pad_single_row(jnp.float32)
    w = jax.ShapeDtypeStruct((4096, 512), jnp.bfloat16)
    x = jax.ShapeDtypeStruct((1, 1, 512), jnp.bfloat16)
    hlo = jax.jit(lambda x, w: project(x, w, 1)).lower(x, w).compile().as_text()
    assert "f32[4096,512]" not in hlo  # the weight-sized convert XLA:CPU makes for a matvec


def test_padded_dot_equals_the_plain_one():
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal((64, 32)), jnp.bfloat16)
    x = jnp.asarray(rng.standard_normal((1, 32)), jnp.bfloat16)
    expected = jnp.dot(x.astype(jnp.float32), w.astype(jnp.float32).T).astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(project(x, w, 1), np.float32),
                                  np.asarray(expected, np.float32))
