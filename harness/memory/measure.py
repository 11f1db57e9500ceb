"""Measured peak memory of the JAX process: the device allocator's peak on GPU/TPU (the highest
over the devices, as the planner predicts per device), the peak resident set on CPU.

On Linux the CPU peak (VmHWM) can be reset, so each dtype's checks get their own peak; where
it cannot, ru_maxrss (the lifetime peak) is used, and the harness runs the smaller dtype
first so that each peak still belongs to the dtype being checked.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def reset_peak() -> bool:
    """Resets the process's peak RSS to its current RSS (Linux >= 4.0); False if unsupported."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak resident set since the last reset_peak (or since start), bytes."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes


def device_peak(device) -> int | None:
    stats = device.memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else int(peak)


def measured_peak(backend: str) -> tuple[int | None, str]:
    """(bytes, what was measured)."""
    if backend == "cpu":
        return peak_rss(), "process peak RSS (VmHWM)"
    import jax

    peaks = [p for d in jax.local_devices() if (p := device_peak(d)) is not None]
    # The planner predicts per device; the fullest device is the one that would run out.
    return (max(peaks) if peaks else None), "device peak_bytes_in_use (the highest device)"
