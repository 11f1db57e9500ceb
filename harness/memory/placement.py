"""Where the transformers reference runs: on one GPU, spread over all of them, or in host RAM,
the first of the three that holds it.

The order is by speed. One GPU runs the reference with no copies between devices. Spread over
several (accelerate's device_map, layer by layer, with a max_memory per GPU from its free
memory), one GPU works at a time and activations cross between them, still far faster than the
host. Host RAM is the last resort: the 27b's reference takes hours on CPU cores, but it is the
harness's own comparison, and refusing a model the devices could run because the reference
needs the host would be the harness's limit, not the model's. The reference never runs at the
same time as the JAX process, so it may use every GPU's free memory.

The figures it places against are the fingerprint's `reference` block: the free memory of each
GPU torch sees (`gpu_free_bytes`, none on a CPU or TPU host) and the host's available RAM.
"""

from __future__ import annotations

import dataclasses

from contract.refusal import gib, memory_reason

GiB = 2**30
# Device memory the reference process takes on each GPU it uses beyond its tensors: its CUDA
# context and the cuBLAS/cuDNN workspaces. NOT YET MEASURED (no GPU has run the harness): the
# usual CUDA 12/13 context with lazy module loading is 0.3-0.6 GiB; 0.75 GiB assumed. The first
# GPU result's reference meta.json (peak per GPU) corrects it.
CUDA_CONTEXT = int(0.75 * GiB)
GPU, GPUS, HOST = "gpu", "gpus", "host"


@dataclasses.dataclass(frozen=True)
class Placement:
    """kind GPU, GPUS or HOST; max_memory: GPU index -> the bytes of weights the reference may
    put there (empty on the host); available: what the placement offers the reference."""

    kind: str
    max_memory: dict[int, int]
    available: int

    def describe(self) -> str:
        """`cuda:0`, `cuda:0-7 (8 GPUs)`, `host RAM`: for progress lines and the result."""
        if self.kind == HOST:
            return "host RAM"
        first, last = min(self.max_memory), max(self.max_memory)
        if self.kind == GPU:
            return f"cuda:{first}"
        return f"cuda:{first}-{last} ({len(self.max_memory)} GPUs)"

    def to_json(self) -> dict:
        return {"kind": self.kind, "max_memory": {str(i): n for i, n in self.max_memory.items()}}


@dataclasses.dataclass(frozen=True)
class ReferenceNeed:
    """The reference's memory: its weights, its working arrays (logits, hidden states, KV
    cache, vision scores), the largest module accelerate keeps whole on one device, and the
    torch/transformers process on the host."""

    weights: int
    work: int
    largest_module: int
    host_runtime: int

    @property
    def on_host(self) -> int:
        return self.weights + self.work + self.host_runtime

    @property
    def on_one_gpu(self) -> int:
        return self.weights + self.work + CUDA_CONTEXT


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The placement chosen, or None and the sentence saying why nothing holds the reference."""

    placement: Placement | None
    need: int  # the bytes judged against the placement (refused: against host RAM)
    has: int  # what the placement offers (refused: the host RAM its sentence names)
    reason: str | None


def place(need: ReferenceNeed, figures: dict) -> Outcome:
    """The first placement that holds the reference: one GPU, all GPUs, host RAM."""
    free = [int(n) for n in figures.get("gpu_free_bytes", [])]
    host = int(figures.get("host_bytes", 0))
    if free:
        best = max(range(len(free)), key=lambda i: free[i])
        if need.on_one_gpu <= free[best]:
            return Outcome(Placement(GPU, {best: free[best] - CUDA_CONTEXT - need.work},
                                     free[best]), need.on_one_gpu, free[best], None)
        spread = _spread(need, free)
        if spread is not None:
            return Outcome(spread, need.weights + need.work, spread.available, None)
    if need.on_host <= host:
        return Outcome(Placement(HOST, {}, host), need.on_host, host, None)
    return Outcome(None, need.on_host, host, _refusal(need, free, host))


def _spread(need: ReferenceNeed, free: list[int]) -> Placement | None:
    """Weights layer by layer over every GPU with room for at least one module; the working
    arrays on the first (where the embedding and the tied head, so the logits, live). accelerate
    keeps a module whole, so each GPU may end up to one largest module short of its budget."""
    budgets = {i: n - CUDA_CONTEXT for i, n in enumerate(free) if n - CUDA_CONTEXT
               >= need.largest_module}
    if len(budgets) < 2:
        return None
    first = min(budgets)
    budgets[first] -= need.work
    if budgets[first] < need.largest_module:
        return None
    if need.weights + len(budgets) * need.largest_module > sum(budgets.values()):
        return None
    return Placement(GPUS, budgets, sum(free[i] for i in budgets))


def _refusal(need: ReferenceNeed, free: list[int], host: int) -> str:
    """`reference needs 58.3 GiB > has 31.0 GiB in host RAM; 1 GPU with 39.4 GiB free holds it
    neither whole nor spread` (host RAM is the last resort, so its figures lead)."""
    gpus = (f"; {len(free)} GPU{'s' if len(free) > 1 else ''} with {gib(sum(free))} free "
            f"hold{'' if len(free) > 1 else 's'} it neither whole nor spread") if free else ""
    return f"{memory_reason(need.on_host, host, reference=True)} in host RAM{gpus}"
