"""Where the reference runs, on faked machine figures: one GPU when it holds it, spread over the
GPUs when one does not, host RAM when only the host can, refused naming all three."""

from harness.checkpoints import registry
from harness.memory import placement, planner

GiB = 2**30
A100_40_FREE = int(39.4 * GiB)  # what torch.cuda.mem_get_info says of an idle A100 40 GB
A100_40_JAX = 30 * GiB  # JAX's pool: XLA_PYTHON_CLIENT_MEM_FRACTION 0.75 of the device


def gpus(count: int, free: list[int] | None = None, host_gib: float = 64) -> dict:
    free = free if free is not None else [A100_40_FREE] * count
    return {"backend": "gpu", "device_count": count, "available_bytes": A100_40_JAX,
            "reference": {"gpu_free_bytes": free, "host_bytes": int(host_gib * GiB)}}


def verdict(model_id: str, fp: dict, dtype: str = "bfloat16") -> planner.Verdict:
    return planner.plan(registry.get(model_id).config(), dtype, fp)


def test_8x_a100_40gb_runs_the_27b_in_bf16_with_the_reference_over_several_gpus():
    v = verdict("gemma-3-27b-it", gpus(8))
    assert v.fits and v.reason() is None
    where = v.reference.placement
    assert where.kind == placement.GPUS and sorted(where.max_memory) == list(range(8))
    assert where.describe() == "cuda:0-7 (8 GPUs)"
    # Its bf16 weights (about 51 GiB) are more than one GPU holds, less than the budgets.
    need = planner.reference_need(registry.get("gemma-3-27b-it").config(), "bfloat16")
    assert need.on_one_gpu > A100_40_FREE
    assert need.weights < sum(where.max_memory.values())
    # The JAX side's parameters are split over the eight: each holds an eighth.
    assert v.jax.params == -(-registry.get("gemma-3-27b-it").config().num_params() * 2 // 8)


def test_1x_a100_40gb_refuses_the_27b_naming_the_reference_and_where_it_looked():
    v = verdict("gemma-3-27b-it", gpus(1, host_gib=32))
    assert not v.fits and v.reference.placement is None
    reason = v.reason()
    assert reason.startswith("needs ") and "GiB > has 30.0 GiB" in reason  # the JAX side
    assert "; reference needs " in reason and "> has 32.0 GiB in host RAM" in reason
    assert reason.endswith("1 GPU with 39.4 GiB free holds it neither whole nor spread")


def test_the_reference_falls_back_to_host_ram_when_the_gpus_cannot_hold_it():
    v = verdict("gemma-3-27b-it", gpus(1, host_gib=200))
    assert v.reference.placement.kind == placement.HOST
    assert v.reference.placement.describe() == "host RAM"
    assert not v.fits  # the JAX side still needs more than one A100's pool


def test_a_tpu_host_keeps_the_reference_in_host_ram():
    fp = {"backend": "tpu", "device_count": 8, "available_bytes": 8 * GiB,
          "reference": {"gpu_free_bytes": [], "host_bytes": 300 * GiB}}
    v = verdict("gemma-3-4b-it", fp)
    assert v.fits and v.reference.placement.kind == placement.HOST
    assert v.reference.placement.available == 300 * GiB


def test_one_gpu_is_preferred_when_it_holds_the_reference():
    v = verdict("gemma-3-4b-it", gpus(8))
    assert v.reference.placement.kind == placement.GPU
    assert v.reference.placement.describe() == "cuda:0"


def test_with_mixed_free_memory_the_freest_gpu_or_only_the_gpus_with_room_are_used():
    busy = int(0.5 * GiB)  # another job holds nearly all of GPU 1
    # The 12b fits one GPU: the freest one is taken, not GPU 0.
    v = verdict("gemma-3-12b-it", gpus(4, [20 * GiB, busy, A100_40_FREE, 25 * GiB]))
    assert v.reference.placement.kind == placement.GPU
    assert v.reference.placement.describe() == "cuda:2"
    # The 27b must be spread: GPU 1 has no room for one module and gets no budget; GPU 0, where
    # the logits are, keeps room for the working arrays.
    free = [A100_40_FREE, busy, A100_40_FREE, A100_40_FREE]
    v = verdict("gemma-3-27b-it", gpus(4, free))
    where = v.reference.placement
    assert where.kind == placement.GPUS and sorted(where.max_memory) == [0, 2, 3]
    need = planner.reference_need(registry.get("gemma-3-27b-it").config(), "bfloat16")
    assert where.max_memory[0] == A100_40_FREE - placement.CUDA_CONTEXT - need.work
    assert where.max_memory[2] == A100_40_FREE - placement.CUDA_CONTEXT
    assert where.to_json() == {"kind": "gpus",
                               "max_memory": {str(i): n for i, n in where.max_memory.items()}}


def test_the_reference_refusal_reads_back_as_a_reference_refusal():
    from contract.refusal import parse_memory_reason

    fp = {"backend": "tpu", "device_count": 1, "available_bytes": 400 * GiB,
          "reference": {"gpu_free_bytes": [], "host_bytes": 16 * GiB}}
    v = verdict("gemma-3-27b-it", fp)
    refusal = parse_memory_reason(v.reason())
    assert refusal is not None and refusal.reference and refusal.has_gib == 16.0


def test_a_reference_only_refusal_records_figures_the_result_rules_accept():
    """On one H100 the JAX side of the 12b fits in float32 but its reference fits neither the
    GPU nor a 32 GiB host: predicted and available bytes frame the reference's sentence, as
    matrix/rules.py requires of a not_supported entry."""
    fp = {"backend": "gpu", "device_count": 1, "available_bytes": 60 * GiB,
          "reference": {"gpu_free_bytes": [int(10 * GiB)], "host_bytes": 32 * GiB}}
    plan = planner.plan_model(registry.get("gemma-3-12b-it").config(), ["float32"], fp)
    (v,) = plan.verdicts
    assert v.jax_fits and not v.fits and v.reason().startswith("reference needs ")
    assert plan.predicted_bytes >= v.reference.need > plan.available_bytes == 32 * GiB
