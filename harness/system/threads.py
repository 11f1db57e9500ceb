"""The environment of the model processes: their JAX allocator on GPUs (ALLOCATOR_ENV), and
their CPU threads. On a machine whose cores are busy with other work,
multi-threaded torch and XLA spin on contended cores and run several times slower than one
thread (measured here: a 270m decode step 0.25 s with 1 thread, 0.7-2.7 s with 2 on 2 busy
cores), so by default the harness uses the cores other work leaves idle now, at least one.

"Other work" is the CPU time of other user-space processes over a short sample taken between
two model processes (from /proc/<pid>/stat): not the load average, which still counts the
model process that has just ended; not the harness's own process tree; and not kernel threads
or interrupts. Counting every non-idle jiffy of /proc/stat took a core for kernel work: right
after writing the 4b's 8.6 GB synthetic checkpoint, page writeback made an idle 2-core machine
look half busy, and the 4b-pt ran its reference on 1 thread (179 s; 104 s on 2).
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

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
_PROC = "/proc"
PF_KTHREAD = 0x00200000  # the `flags` bit of a kernel thread (include/linux/sched.h)


def auto_threads(sample_seconds: float = SAMPLE_SECONDS) -> int:
    """The cores other processes leave idle over the next sample_seconds (the 1-minute load
    average where /proc is missing), at least one."""
    cores = os.cpu_count() or 1
    try:
        busy = other_busy_cores(sample_seconds)
    except OSError:
        try:
            busy = os.getloadavg()[0]
        except OSError:
            busy = 0.0
    return max(1, min(cores, cores - int(busy + 0.5)))


def other_busy_cores(seconds: float, own: int | None = None) -> float:
    """How many cores' worth of CPU time the user-space processes outside `own`'s process
    tree (default: this process) used during `seconds`."""
    own = os.getpid() if own is None else own
    before = process_table()
    time.sleep(seconds)
    after = process_table()
    return busy_between(before, after, own, seconds, os.sysconf("SC_CLK_TCK"))


class Process(NamedTuple):
    ppid: int
    kernel_thread: bool
    ticks: int  # user + system CPU time, clock ticks


def process_table(proc: str | None = None) -> dict[int, Process]:
    """{pid: Process} from /proc/<pid>/stat; processes that end while it reads are skipped."""
    proc = proc or _PROC
    table = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), encoding="ascii", errors="replace") as f:
                table[int(entry.name)] = parse_stat(f.read())
        except (OSError, ValueError, IndexError):
            continue
    if not table:
        raise OSError(f"no process found under {proc}")
    return table


def parse_stat(text: str) -> Process:
    """One /proc/<pid>/stat line. The command name (in parentheses) may hold spaces and ')', so
    the fields are counted from the last ')': state ppid pgrp session tty tpgid flags minflt
    cminflt majflt cmajflt utime stime ..."""
    fields = text[text.rindex(")") + 2:].split()
    return Process(int(fields[1]), bool(int(fields[6]) & PF_KTHREAD),
                   int(fields[11]) + int(fields[12]))


def busy_between(before: dict[int, Process], after: dict[int, Process], own: int,
                 seconds: float, ticks_per_second: int) -> float:
    """Cores' worth of CPU time of the other user-space processes between two tables. A process
    new in `after` started during the sample: all its time counts."""
    mine = own_tree(after, own) | own_tree(before, own)
    used = sum(p.ticks - (before[pid].ticks if pid in before else 0)
               for pid, p in after.items() if pid not in mine and not p.kernel_thread)
    return max(0.0, used / ticks_per_second / seconds) if seconds > 0 else 0.0


def own_tree(table: dict[int, Process], own: int) -> set[int]:
    """own and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid, p in table.items():
        children.setdefault(p.ppid, []).append(pid)
    tree, todo = set(), [own]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, []))
    return tree


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
