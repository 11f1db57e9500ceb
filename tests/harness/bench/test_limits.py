"""The bench's limit arithmetic on the released configs (bytes a decode step reads, FLOPs a
prompt token costs), and the table's limit columns on fixed figures. No timing here."""

import pytest

from harness.bench import limits
from harness.bench import run as bench
from harness.checkpoints import registry

GB = 1e9


def text(model_id: str):
    return registry.get(model_id).config().text


def test_a_decode_step_reads_every_weight_and_the_attended_cache():
    t = text("gemma-3-270m")  # 268,098,176 parameters; 18 layers, 3 global; 1 kv head of 256
    per_position = 2 * 1 * 256 * 2  # K and V, bf16
    # 1000 positions cached: 15 sliding layers read their 512-position window, 3 global all 1001.
    kv = (15 * 512 + 3 * 1001) * per_position
    assert limits.decode_bytes_per_step(t, "bfloat16", 1000, 1) == 268_098_176 * 2 + kv
    assert limits.decode_bytes_per_step(t, "float32", 0, 8) == 268_098_176 * 4 + 8 * 18 * 2048


def test_a_prompt_token_costs_two_flops_per_layer_weight_its_attention_and_a_share_of_the_head():
    t = text("gemma-3-1b-pt")  # 999,885,952 parameters, hidden 1152; 4 heads of 256
    head = 262_144 * 1152  # applied once per prompt: generate keeps the last logits only
    layers = 2 * (999_885_952 - head - 1152)
    assert limits.prefill_flops_per_token(t, 1) == layers + 26 * 4 * 4 * 256 + 2 * head
    # 1024 tokens: global layers attend (n+1)/2 on average, sliding ones at most 512.
    sliding = sum(min(p + 1, 512) for p in range(1024)) / 1024
    expected = layers + 4 * 4 * 256 * (22 * sliding + 4 * 1025 / 2) + 2 * head / 1024
    assert limits.prefill_flops_per_token(t, 1024) == pytest.approx(expected)


def test_fractions_divide_by_the_measured_limits():
    t = text("gemma-3-270m")
    step = limits.decode_bytes_per_step(t, "bfloat16", 48, 1)
    assert limits.decode_fraction(t, "bfloat16", 10.0, 1, 48, 20 * GB) == pytest.approx(
        step * 10 / (20 * GB))
    flops = limits.prefill_flops_per_token(t, 128)
    assert limits.prefill_fraction(t, 128, 500.0, 100 * GB) == pytest.approx(
        flops * 500 / (100 * GB))


def test_the_machine_limit_is_the_faster_side_per_dtype():
    runs = [{"side": "jax", "dtype": "bfloat16", "limits": {"bandwidth_bytes_per_s": 20 * GB,
                                                             "matmul_flops_per_s": 96 * GB}},
            {"side": "torch", "dtype": "bfloat16", "limits": {"bandwidth_bytes_per_s": 25 * GB,
                                                               "matmul_flops_per_s": 1 * GB}},
            {"side": "torch", "dtype": "float32", "limits": {"bandwidth_bytes_per_s": 24 * GB,
                                                              "matmul_flops_per_s": 130 * GB}},
            {"side": "jax", "dtype": "float32", "error": "exit 1"}]
    assert limits.machine_limits(runs) == {"bandwidth_bytes_per_s": 25 * GB,
                                           "matmul_flops_per_s": {"bfloat16": 96 * GB,
                                                                  "float32": 130 * GB}}


def test_the_table_shows_each_sides_share_of_the_limit():
    runs = [{"model": "gemma-3-270m", "side": side, "dtype": "float32",
             "prefill_tokens_per_s": {}, "decode_tokens_per_s": {"1": rate}}
            for side, rate in (("jax", 15.0), ("torch", 7.5))]
    machine = {"bandwidth_bytes_per_s": 25 * GB, "matmul_flops_per_s": {"float32": 100 * GB}}
    [row] = bench.ratios(runs, machine, new_tokens=32)
    step = limits.decode_bytes_per_step(text("gemma-3-270m"), "float32", 48, 1)
    assert row["jax_of_limit"] == pytest.approx(step * 15 / (25 * GB))
    assert row["torch_of_limit"] == pytest.approx(row["jax_of_limit"] / 2)
    lines = bench.table([row]).splitlines()
    assert lines[0].endswith("| JAX of limit | transformers of limit |")
    assert lines[2].endswith(f"| {100 * row['jax_of_limit']:.0f}% | "
                             f"{100 * row['torch_of_limit']:.0f}% |")
    assert "limit" not in bench.table([{k: v for k, v in row.items()
                                        if not k.endswith("_of_limit")}])
