"""The benchmark's report: the CPU and its flags beside the table, JAX against torch's best
and, where it ran, llama.cpp's (on fixed figures: no timing here)."""

from pathlib import Path

import pytest

from harness.bench import limits, llamacpp
from harness.bench import run as bench
from harness.checkpoints import registry


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


def _run(side, dtype, decode, **extra):
    return {"model": "gemma-3-270m", "side": side, "dtype": dtype, "prefill_tokens_per_s": {},
            "decode_tokens_per_s": {"1": decode}, "generate_tokens_per_s": {"64": decode / 2},
            **extra}


LLAMA = _run("llamacpp", "Q4_K_M", 60.0, weight_bytes=253_000_000)
OURS_AND_TORCH = [_run("jax", "float32", 24.0), _run("torch", "bfloat16", 8.0)]


def test_llama_cpp_gets_its_own_ratio_and_columns_where_it_ran():
    rows = bench.ratios(OURS_AND_TORCH + [LLAMA])
    decode = next(r for r in rows if r["metric"] == "decode")
    assert decode["ratio"] == 3.0 and decode["ratio_llamacpp"] == 0.4
    lines = bench.table(rows).splitlines()
    assert lines[0] == ("| model | measurement | JAX tok/s | transformers tok/s | llama.cpp tok/s "
                        "| JAX / transformers | JAX / llama.cpp |")
    assert lines[2] == ("| gemma-3-270m | decode, batch 1 | 24.0 (float32) | 8.0 (bfloat16) | "
                        "60.0 (Q4_K_M) | 3.00x | 0.40x |")
    assert lines[3].startswith("| gemma-3-270m | generate, 8-token prompt + 64 new | 12.0")


def test_load_times_are_listed_with_jaxs_fastest_against_each_peers():
    runs = [run | {"load_s": load} for run, load in
            [(OURS_AND_TORCH[0], 1.5), (OURS_AND_TORCH[0] | {"dtype": "bfloat16"}, 1.2),
             (OURS_AND_TORCH[1], 6.0), (LLAMA, 0.6)]]
    runs.append(_run("jax", "float32", 1.0) | {"model": "other", "load_s": 2.0})
    assert bench.load_lines(runs).splitlines() == [
        ("load, gemma-3-270m: JAX float32 1.50 s, JAX bfloat16 1.20 s, transformers bfloat16 "
        "6.00 s, llama.cpp Q4_K_M 0.60 s (JAX's fastest / each peer's fastest: transformers "
        "0.20x, llama.cpp 2.00x)"),
        "load, other: JAX float32 2.00 s"]


def test_without_llama_cpp_the_table_has_no_such_column():
    lines = bench.table(bench.ratios(OURS_AND_TORCH)).splitlines()
    assert "llama.cpp" not in lines[0] and len(lines) == 4
    assert lines[2].endswith("| 24.0 (float32) | 8.0 (bfloat16) | 3.00x |")


def test_a_row_with_only_one_peer_shows_the_other_as_not_measured():
    rows = bench.ratios([OURS_AND_TORCH[0], LLAMA, _run("torch", "float32", 6.0) | {
        "decode_tokens_per_s": {}, "generate_tokens_per_s": {}}])
    [decode] = [r for r in rows if r["metric"] == "decode"]
    assert "ratio" not in decode
    assert bench.table([decode]).splitlines()[2] == (
        "| gemma-3-270m | decode, batch 1 | 24.0 (float32) | 60.0 (Q4_K_M) | 0.40x |")


def test_llama_cpps_decode_share_counts_its_quantized_bytes_and_float16_cache():
    machine = {"bandwidth_bytes_per_s": 25e9, "matmul_flops_per_s": {"float32": 1e11}}
    [decode] = [r for r in bench.ratios(OURS_AND_TORCH + [LLAMA], machine, new_tokens=32)
                if r["metric"] == "decode"]
    step = limits.decode_bytes_per_step(registry.get("gemma-3-270m").config().text, "float16",
                                        48, 1, weight_bytes=253_000_000)
    assert decode["llamacpp_of_limit"] == pytest.approx(step * 60 / 25e9)
    assert step < 253_000_000 + 2e6  # the weights as stored, not 268M parameters at 2 bytes


def test_the_bench_says_how_to_add_the_llama_cpp_column_when_it_cannot(monkeypatch):
    monkeypatch.setattr(llamacpp.importlib.util, "find_spec", lambda name: None)
    reason = llamacpp.missing_reason()
    assert reason.startswith("llama.cpp column left out: llama_cpp (llama-cpp-python) is not "
                             "importable")
    assert "pip install llama-cpp-python==" in reason and "builds from source" in reason
    monkeypatch.setattr(llamacpp.importlib.util, "find_spec", lambda name: object())
    assert llamacpp.missing_reason() is None


def test_nox_installs_the_llama_cpp_version_the_bench_names():
    noxfile = (Path(__file__).parents[3] / "noxfile.py").read_text()
    assert f'LLAMA_CPP = "llama-cpp-python=={llamacpp.VERSION}"' in noxfile
