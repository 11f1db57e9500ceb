"""The backend fingerprint the harness records itself: platform, device kind and count, memory
per device, host CPU and RAM, library versions.

`python -m harness.system.fingerprint [--backend gpu]` prints it as JSON. The runner calls it in a
subprocess, so the parent process never initialises JAX on an accelerator (which would reserve
device memory that the model processes need).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from importlib import metadata

import psutil

from harness.system import accelerator

BACKENDS = ("cpu", "gpu", "tpu")
_UNSAFE = re.compile(r"[^0-9A-Za-z.+_-]")
# Distribution names that carry each accelerator library's version, first found wins.
_ACCEL_PACKAGES = {
    "cuda": ("nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime"),
    "cudnn": ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn"),
    "libtpu": ("libtpu", "libtpu-nightly"),
    "jax_cuda_plugin": ("jax-cuda13-plugin", "jax-cuda12-plugin"),
}

# The CPU features that decide which kernels XLA:CPU and torch can use (what a CPU result ran on).
VECTOR_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni",
                          "avx_vnni", "amx_bf16", "amx_tile", "amx_int8", "fma"})


class BackendMismatch(RuntimeError):
    """The run was asked for a backend that JAX does not see."""


def clean_version(text: str | None) -> str | None:
    """A version string the result schema accepts (no spaces or odd characters), or None."""
    if not text:
        return None
    cleaned = _UNSAFE.sub("_", str(text).strip()).lstrip("._+-")[:64]
    return cleaned or None


def _dist(*names: str) -> str | None:
    for name in names:
        try:
            return clean_version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "flax", "numpy", "torch", "transformers"):
        out[name] = _dist(name)
    for key, names in _ACCEL_PACKAGES.items():
        out[key] = _dist(*names)
    return {**out, **_driver_versions(), **_runtime_versions()}


def _driver_versions() -> dict[str, str]:
    """The NVIDIA driver and the CUDA version it supports, where nvidia-smi answers."""
    _names, driver, cuda, _error = accelerator.nvidia_smi()
    found = {"nvidia_driver": clean_version(driver), "cuda_driver": clean_version(cuda)}
    return {k: v for k, v in found.items() if v}


def _runtime_versions() -> dict[str, str]:
    """CUDA runtime and cuDNN as JAX loaded them, and the CUDA torch was built with."""
    found: dict[str, str | None] = {**_jax_cuda_versions()}  # torch.version.cuda may be None
    try:
        import torch

        found["torch_cuda"] = torch.version.cuda
    except ImportError:
        pass
    return {k: c for k, v in found.items() if (c := clean_version(v))}


def _jax_cuda_versions() -> dict[str, str]:
    """From jax's private _versions module of the CUDA plugin (present only in CUDA builds):
    absent or changed means not recorded, never a failed run."""
    try:
        from jax._src.lib import cuda_versions as cv

        if cv is None:  # jax sets it to None in builds without the CUDA plugin
            return {}
        rt, dnn = cv.cuda_runtime_get_version(), cv.cudnn_get_version()
    except Exception:  # noqa: BLE001
        return {}
    return {"cuda_runtime": f"{rt // 1000}.{rt % 1000 // 10}",
            "cudnn_runtime": f"{dnn // 10000}.{dnn % 10000 // 100}.{dnn % 100}"}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()[:200]
    except OSError:
        pass
    return (platform.processor() or platform.machine() or "unknown")[:200]


def cpu_flags(cpuinfo: str | None = None) -> list[str]:
    """The vector/matrix flags of VECTOR_FLAGS the host CPU has, sorted (the first `flags`
    line of /proc/cpuinfo); [] where there is none (non-Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpuinfo = f.read()
        except OSError:
            return []
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return sorted(VECTOR_FLAGS & set(line.split(":", 1)[1].split()))
    return []


def host() -> dict:
    return {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": os.cpu_count() or 1,
            "ram_bytes": psutil.virtual_memory().total,
            "os": f"{platform.system()}-{platform.release()}-{platform.machine()}"[:200]}


def devices() -> dict:
    """backend, device_kind, device_count, memory per device and memory free now (per
    device: the least any device has)."""
    import jax

    backend = jax.default_backend()
    devs = jax.devices()
    if backend == "cpu":
        total, free = psutil.virtual_memory().total, psutil.virtual_memory().available
    else:  # the planner judges each device: the fullest one decides
        stats = [d.memory_stats() or {} for d in devs]
        total = int(stats[0].get("bytes_limit", 0)) or psutil.virtual_memory().total
        free = min((int(s.get("bytes_limit", 0)) or total) - int(s.get("bytes_in_use", 0))
                   for s in stats)
    return {"backend": backend, "device_kind": devs[0].device_kind, "device_count": len(devs),
            "memory_per_device_bytes": int(total), "available_bytes": int(free)}


def reference_memory() -> dict:
    """What the torch reference may use (harness/memory/placement.py chooses where): the free
    memory of each GPU torch sees, none on a CPU or TPU host, and the host's available RAM."""
    gpus: list[int] = []
    try:
        import torch

        if torch.cuda.is_available():
            gpus = [int(torch.cuda.mem_get_info(i)[0]) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return {"gpu_free_bytes": gpus, "host_bytes": int(psutil.virtual_memory().available)}


def check_backend(expected: str | None, found: str) -> None:
    """Fails loudly when --backend names a backend JAX does not see (never fills the CPU
    column with a run that was meant for a GPU)."""
    if expected is None or expected == found:
        return
    raise BackendMismatch(
        f"--backend {expected} was asked for, but JAX's default backend is {found!r}. "
        f"Install the JAX build for it (`pip install -e \".[harness,cuda13]\"` or cuda12 "
        f"for gpu, by the driver's CUDA version; `.[harness,tpu]` for tpu; "
        f"`python -m harness.system.accelerator` says which), check that the device is visible "
        f"(nvidia-smi), or drop --backend to run on {found}.")


def check_accelerator(expected: str | None, found: str, seen: accelerator.Accelerator) -> None:
    """Refuses a CPU-only jaxlib on a machine whose OS shows a GPU or TPU: its result would
    fill the CPU column, every model run on the host. `--backend cpu` asks for that on purpose."""
    if found != "cpu" or seen.backend == "cpu" or expected == "cpu":
        return
    raise BackendMismatch(
        f"this machine has an accelerator ({seen.line}), but JAX's default backend is 'cpu' "
        f"(a CPU-only jaxlib), so this run would fill the CPU column. Install the JAX build "
        f"for it: {accelerator.install_command(seen.kind)} (nox -s matrix does this), or pass "
        f"--backend cpu to run the CPU column on purpose.")


def fingerprint(expected_backend: str | None = None) -> dict:
    seen = accelerator.detect()  # first: a bad GEMMA3_ACCELERATOR fails before jax starts
    found = devices()
    check_backend(expected_backend, found["backend"])
    check_accelerator(expected_backend, found["backend"], seen)
    return {**found, "versions": versions(), "host": host(), "reference": reference_memory()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.system.fingerprint")
    p.add_argument("--backend", choices=BACKENDS, default=None)
    args = p.parse_args(argv)
    try:
        print(json.dumps(fingerprint(args.backend)))
    except (BackendMismatch, accelerator.BadOverride) as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
