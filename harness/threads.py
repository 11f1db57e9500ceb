"""The environment of the model processes: their JAX allocator on GPUs (ALLOCATOR_ENV), and
their CPU threads. On a machine whose cores are busy with other work,
multi-threaded torch and XLA spin on contended cores and run several times slower than one
thread (measured here: a 270m decode step 0.25 s with 1 thread, 0.7-2.7 s with 2 on 2 busy
cores), so by default the harness uses the cores that are idle now, at least one.
"""

from __future__ import annotations

import os

ENV = "GEMMA3_HARNESS_THREADS"
# The JAX allocator of the model processes, and of the fingerprint (so the device limit the
# planner reads is the one the checks get). By default JAX reserves 75% of GPU memory when it
# starts, so the process holds the pool whatever the model needs: the GPU's memory in use
# (nvidia-smi, another process such as a torch reference) shows the pool, not the model, and
# the fingerprint's torch.cuda.mem_get_info(), read after JAX started in the same process,
# would give the reference a quarter of the GPU.
# PREALLOCATE=false keeps XLA's BFC allocator but grows it on demand, so the process holds what
# the model used (its peak_bytes_in_use, which the memory check records, counts buffers either
# way). Not XLA_PYTHON_CLIENT_ALLOCATOR=platform: it frees each buffer at once, fragments and
# runs far slower. The limit stays XLA_PYTHON_CLIENT_MEM_FRACTION (default 0.75) of the device,
# which is memory_stats()["bytes_limit"]. A value the user set wins; TPUs ignore these.
ALLOCATOR_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def auto_threads() -> int:
    cores = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:
        busy = 0
    return max(1, min(cores, cores - busy))


def allocator_env(base: dict | None = None) -> dict:
    """The environment with the model processes' JAX allocator settings (ALLOCATOR_ENV)."""
    env = dict(os.environ if base is None else base)
    for name, value in ALLOCATOR_ENV.items():
        env.setdefault(name, value)
    return env


def child_env(threads: int, base: dict | None = None) -> dict:
    """Environment for a model process limited to `threads` CPU threads."""
    env = allocator_env(base)
    env[ENV] = str(threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    if threads == 1:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    return env


def apply_torch_threads() -> None:
    """In the reference process: honour the runner's choice."""
    threads = os.environ.get(ENV)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
