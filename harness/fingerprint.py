"""The backend fingerprint the harness records itself: platform, device kind and count, memory
per device, host CPU and RAM, library versions.

`python -m harness.fingerprint [--backend gpu]` prints it as JSON. The runner calls it in a
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

BACKENDS = ("cpu", "gpu", "tpu")
_UNSAFE = re.compile(r"[^0-9A-Za-z.+_-]")
# Distribution names that carry each accelerator library's version, first found wins.
_ACCEL_PACKAGES = {
    "cuda": ("nvidia-cuda-runtime-cu13", "nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime"),
    "cudnn": ("nvidia-cudnn-cu13", "nvidia-cudnn-cu12", "nvidia-cudnn"),
    "libtpu": ("libtpu", "libtpu-nightly"),
}


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
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "flax", "numpy", "torch", "transformers"):
        out[name] = _dist(name)
    for key, names in _ACCEL_PACKAGES.items():
        out[key] = _dist(*names)
    return out


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()[:200]
    except OSError:
        pass
    return (platform.processor() or platform.machine() or "unknown")[:200]


# Vector and matrix extensions that decide CPU speed (bf16 matmuls in particular).
CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile", "avx_vnni",
             "asimd", "sve", "sve2")


def cpu_flags() -> list[str]:
    """Which of CPU_FLAGS /proc/cpuinfo lists (x86 `flags`, Arm `Features`), in that order."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    found = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS if flag in found]
    except OSError:
        pass
    return []


def host() -> dict:
    return {"cpu": cpu_name(), "cores": os.cpu_count() or 1,
            "ram_bytes": psutil.virtual_memory().total,
            "os": f"{platform.system()}-{platform.release()}-{platform.machine()}"[:200],
            "cpu_flags": cpu_flags()}


def devices() -> dict:
    """backend, device_kind, device_count, memory per device and memory free now."""
    import jax

    backend = jax.default_backend()
    devs = jax.devices()
    if backend == "cpu":
        total, free = psutil.virtual_memory().total, psutil.virtual_memory().available
    else:
        stats = devs[0].memory_stats() or {}
        total = int(stats.get("bytes_limit", 0)) or psutil.virtual_memory().total
        free = total - int(stats.get("bytes_in_use", 0))
    return {"backend": backend, "device_kind": devs[0].device_kind, "device_count": len(devs),
            "memory_per_device_bytes": int(total), "available_bytes": int(free)}


def reference_device() -> dict:
    """Where the torch reference will run: cuda when torch sees a GPU, else the host CPU."""
    try:
        import torch
    except ImportError:
        return {"device": "missing", "memory_bytes": 0}
    if torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        return {"device": "cuda", "memory_bytes": int(free)}
    return {"device": "cpu", "memory_bytes": int(psutil.virtual_memory().available)}


def check_backend(expected: str | None, found: str) -> None:
    """Fails loudly when --backend names a backend JAX does not see (never fills the CPU
    column with a run that was meant for a GPU)."""
    if expected is None or expected == found:
        return
    raise BackendMismatch(
        f"--backend {expected} was asked for, but JAX's default backend is {found!r}. "
        f"Install the JAX build for it (e.g. `pip install -U \"jax[cuda12]\"` for gpu, "
        f"`pip install -U \"jax[tpu]\"` for tpu), check that the device is visible "
        f"(nvidia-smi), or drop --backend to run on {found}.")


def fingerprint(expected_backend: str | None = None) -> dict:
    found = devices()
    check_backend(expected_backend, found["backend"])
    return {**found, "versions": versions(), "host": host(), "reference": reference_device()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.fingerprint")
    p.add_argument("--backend", choices=BACKENDS, default=None)
    args = p.parse_args(argv)
    try:
        print(json.dumps(fingerprint(args.backend)))
    except BackendMismatch as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
