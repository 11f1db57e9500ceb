"""The environment of the model processes: their JAX allocator on GPUs (ALLOCATOR_ENV), and
their CPU threads. On a machine whose cores are busy with other work,
multi-threaded torch and XLA spin on contended cores and run several times slower than one
thread (measured here: a 270m decode step 0.25 s with 1 thread, 0.7-2.7 s with 2 on 2 busy
cores), so by default the harness uses the cores that are idle now, at least one.
"Now" is a short sample of /proc/stat taken between two model processes: the load average
would still count the harness's own model process that has just ended.
"""

from __future__ import annotations

import os
import time

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


SAMPLE_SECONDS = 0.5
_PROC_STAT = "/proc/stat"


def auto_threads(sample_seconds: float = SAMPLE_SECONDS) -> int:
    """The cores idle over the next sample_seconds (the 1-minute load average where
    /proc/stat is missing), at least one."""
    cores = os.cpu_count() or 1
    try:
        busy = busy_cores(sample_seconds)
    except (OSError, ValueError):
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return max(1, min(cores, cores - int(busy + 0.5)))


def busy_cores(seconds: float) -> float:
    """How many cores' worth of time was spent not idle during `seconds` (from /proc/stat)."""
    idle_before, total_before = _cpu_times()
    time.sleep(seconds)
    idle_after, total_after = _cpu_times()
    elapsed = total_after - total_before
    if elapsed <= 0:
        return 0.0
    return (os.cpu_count() or 1) * (1 - (idle_after - idle_before) / elapsed)


def _cpu_times() -> tuple[int, int]:
    """(idle + iowait, total) jiffies over all cores, from the `cpu` line of /proc/stat."""
    with open(_PROC_STAT, encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # user..steal; guest is inside user


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
