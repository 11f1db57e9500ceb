"""CPU threads for the model processes. On a machine whose cores are busy with other work,
multi-threaded torch and XLA spin on contended cores and run several times slower than one
thread (measured here: a 270m decode step 0.25 s with 1 thread, 0.7-2.7 s with 2 on 2 busy
cores), so by default the harness uses the cores that are idle now, at least one.
"""

from __future__ import annotations

import os

ENV = "GEMMA3_HARNESS_THREADS"


def auto_threads() -> int:
    cores = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:
        busy = 0
    return max(1, min(cores, cores - busy))


def child_env(threads: int, base: dict | None = None) -> dict:
    """Environment for a model process limited to `threads` CPU threads."""
    env = dict(os.environ if base is None else base)
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
