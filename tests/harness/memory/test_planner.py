"""The memory planner: what each size needs per dtype, and the refusals it writes."""

import ml_dtypes
import numpy as np

from gemma3.nn.cache import cache_bytes
from harness.checkpoints import registry
from harness.memory import planner

GiB = 2**30


def machine(free_gib: float, backend: str = "cpu") -> dict:
    return {"backend": backend, "available_bytes": int(free_gib * GiB),
            "reference": {"gpu_free_bytes": [], "host_bytes": int(free_gib * GiB)}}


def config(model_id: str):
    return registry.get(model_id).config()


def test_parameters_and_cache_are_counted_in_the_dtype():
    cfg = config("gemma-3-1b-it")
    fp32, bf16 = planner.jax_need(cfg, "float32", "gpu"), planner.jax_need(cfg, "bfloat16", "gpu")
    assert fp32.params == 999_885_952 * 4 and bf16.params == 999_885_952 * 2
    _, length = planner._longest_generation(cfg)
    assert bf16.kv_cache == cache_bytes(cfg.text, 2, length, np.dtype(ml_dtypes.bfloat16))
    assert fp32.total > bf16.total > bf16.params
    # On XLA:CPU bf16 costs bf16: its dots make no float32 copies of the weights.
    assert planner.jax_need(cfg, "bfloat16", "cpu").total < planner.jax_need(
        cfg, "float32", "cpu").total


def test_small_models_fit_a_24_gib_machine():
    for model_id in ("gemma-3-270m", "gemma-3-1b-pt"):
        plan = planner.plan_model(config(model_id), ["float32", "bfloat16"], machine(20))
        assert plan.run_dtypes == ["float32", "bfloat16"] and plan.reason() is None


def test_a_dtype_that_does_not_fit_is_refused_with_needed_and_available_memory():
    plan = planner.plan_model(config("gemma-3-4b-it"), ["float32", "bfloat16"],
                              machine(16, "gpu"))
    assert plan.run_dtypes == ["bfloat16"]
    assert plan.reason().startswith("float32 not supported: needs ")
    # Both sides are short of memory in float32 here, and the refusal names both.
    assert plan.reason().endswith("GiB > has 16.0 GiB in host RAM")
    assert "GiB > has 16.0 GiB; reference needs " in plan.reason()


def test_on_this_kind_of_machine_the_4b_runs_in_bf16_only():
    # 24 GB, ~20 GiB free: the 4b needs ~14 GiB in bf16 (measured 13.7), ~26 GiB in float32.
    plan = planner.plan_model(config("gemma-3-4b-it"), ["float32", "bfloat16"], machine(20))
    assert plan.run_dtypes == ["bfloat16"]
    assert plan.reason().startswith("float32 not supported: needs ")


def test_a_model_that_fits_in_no_dtype_is_not_supported():
    plan = planner.plan_model(config("gemma-3-27b-it"), ["float32", "bfloat16"], machine(20))
    assert plan.run_dtypes == []
    fp32, bf16 = plan.verdicts  # the reason leads with the dtype closest to fitting
    reference = bf16.reference.need / GiB
    assert plan.reason() == (f"needs {bf16.jax.total / GiB:.1f} GiB > has 20.0 GiB; reference "
                             f"needs {reference:.1f} GiB > has 20.0 GiB in host RAM "
                             f"(bfloat16; float32 {fp32.predicted / GiB:.1f} GiB)")
    assert plan.predicted_bytes == min(v.predicted for v in plan.verdicts)
    assert plan.available_bytes == 20 * GiB


def test_the_reference_side_is_checked_too():
    fp = machine(80, "gpu")
    fp["reference"] = {"gpu_free_bytes": [], "host_bytes": 16 * GiB}
    verdict = planner.plan(config("gemma-3-12b-it"), "bfloat16", fp)
    assert not verdict.fits and verdict.reason().startswith("reference needs ")


def test_xla_cpu_weight_copies_are_counted_for_float32_on_cpu_only():
    cfg = config("gemma-3-4b-it")
    runtime = planner.JAX_OVERHEAD["cpu"] - planner.JAX_OVERHEAD[None]
    cpu, gpu = planner.jax_need(cfg, "bfloat16", "cpu"), planner.jax_need(cfg, "bfloat16", "gpu")
    assert cpu.overhead - gpu.overhead == runtime  # bf16 weights are held once
    cpu, gpu = planner.jax_need(cfg, "float32", "cpu"), planner.jax_need(cfg, "float32", "gpu")
    assert cpu.overhead - gpu.overhead - runtime == int(0.2 * cfg.num_params() * 4)


def test_emulated_cpu_devices_each_hold_their_replicas_in_the_one_ram():
    cfg = config("gemma-3-270m")
    one = planner.plan(cfg, "float32", {**machine(20), "device_count": 1}).jax
    eight = planner.plan(cfg, "float32", {**machine(20), "device_count": 8}).jax
    assert eight.params == one.params  # the shards add up to the whole model
    assert eight.kv_cache == 8 * one.kv_cache and eight.activations == 8 * one.activations
    assert eight.outputs == one.outputs  # compared on the host, once
