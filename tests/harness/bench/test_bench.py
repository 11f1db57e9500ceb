"""The benchmark's report: the CPU and its flags beside the table, JAX against torch's best."""

from harness.bench import run as bench


def test_machine_line_names_the_cpu_and_its_flags():
    line = bench.machine_line({"host": {"cpu": "Intel(R) Xeon(R)", "cores": 2,
                                        "cpu_flags": ["amx_bf16", "avx512_bf16", "avx512f"]}})
    assert line.startswith("CPU: Intel(R) Xeon(R), 2 cores; flags: amx_bf16 avx512_bf16 avx512f")
    assert "not: " in line and "avx2" in line.split("not: ")[1]


def test_ratios_take_each_sides_faster_dtype():
    runs = [{"model": "m", "side": "jax", "dtype": "float32", "prefill_tokens_per_s": {"128": 10},
             "decode_tokens_per_s": {}},
            {"model": "m", "side": "jax", "dtype": "bfloat16", "prefill_tokens_per_s": {"128": 30},
             "decode_tokens_per_s": {}},
            {"model": "m", "side": "torch", "dtype": "float32", "prefill_tokens_per_s": {"128": 20},
             "decode_tokens_per_s": {}},
            {"model": "m", "side": "torch", "dtype": "bfloat16",
             "prefill_tokens_per_s": {"128": 40}, "decode_tokens_per_s": {}}]
    [row] = bench.ratios(runs)
    assert (row["jax_dtype"], row["torch_dtype"], row["ratio"]) == ("bfloat16", "bfloat16", 0.75)
