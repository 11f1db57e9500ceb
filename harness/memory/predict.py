"""`python -m harness.memory.predict [--check]`: the planner's verdict for every model in each
fixed accelerator column, from the column's device memory alone, written to
contract/predictions.json for the reporter (matrix/predictions.py renders it; a test keeps the
committed file equal to what this writes).

Per column the JAX side is judged per device, in bf16 (what a ✅ needs), against the memory JAX
gets there, and the reference is placed as the harness would place it (one GPU, spread over
the GPUs, else host RAM, which is not judged: a host's RAM varies too much to predict). The
planner's error sets a band around the limit:

- refused: the need times the lowest measured/predicted peak ratio is still above the memory;
- fits: the need plus the memory check's slack (contract/bounds.py) is within it;
- tight: in between.

A column with two cards (A100 40 and 80 GB) shows the smallest card that is not refused, or the
largest card's refusal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from contract.bounds import memory_slack
from harness.checkpoints import registry
from harness.memory import planner

GiB = 2**30
OUTPUT = registry.REPO_ROOT / "contract" / "predictions.json"
# The planner overestimates; the most it has: measured/predicted peak 0.67 (the 270m-it in
# bf16, results/20261202T020754Z-cpu-cpu-1x.json; 0.80 and up from the 1b on). Lowest over the
# memory checks of the committed CPU results, so a refusal holds even at that error.
LOWEST_MEASURED_RATIO = 0.67
# JAX's pool on a GPU: XLA_PYTHON_CLIENT_MEM_FRACTION's default 0.75 of the device (the harness
# does not change it; harness/memory/planner.py). On a TPU the whole HBM is assumed (NOT YET
# MEASURED: libtpu reserves some).
GPU_POOL_FRACTION = 0.75
# What torch.cuda.mem_get_info reports free on an idle GPU, below its memory: the driver's and
# ECC reservations. NOT YET MEASURED: about 0.6 GiB on an A100 40 GB.
GPU_RESERVED = int(0.6 * GiB)


@dataclasses.dataclass(frozen=True)
class Device:
    name: str  # the card or chip, e.g. "A100 40GB"; shown in the cell ("per A100 40GB")
    backend: str
    memory: int  # per device, the vendor's figure
    source: str  # where the vendor writes it


A100_40 = Device("A100 40GB", "gpu", 40 * GiB,
                 "NVIDIA A100 datasheet: 40GB HBM2 (nvidia.com/en-us/data-center/a100)")
A100_80 = Device("A100 80GB", "gpu", 80 * GiB,
                 "NVIDIA A100 datasheet: 80GB HBM2e (nvidia.com/en-us/data-center/a100)")
H100_80 = Device("H100 80GB", "gpu", 80 * GiB,
                 "NVIDIA H100 datasheet: 80GB HBM3, SXM (nvidia.com/en-us/data-center/h100)")
TPU_V2_CORE = Device("TPU v2 core", "tpu", 8 * GiB,
                     "Google Cloud TPU v2: 8 GiB of HBM per TensorCore, JAX's device "
                     "(cloud.google.com/tpu/docs/v2)")
TPU_V5E_CHIP = Device("TPU v5e chip", "tpu", 16 * GiB,
                      "Google Cloud TPU v5e: 16 GiB of HBM per chip (cloud.google.com/tpu/docs/v5e)")

# Each fixed accelerator column: (device count, the cards it covers, smallest first).
COLUMNS: dict[str, tuple[int, tuple[Device, ...]]] = {
    "GPU A100 (1x)": (1, (A100_40, A100_80)),
    "GPU H100 (1x)": (1, (H100_80,)),
    "GPU A100 (8x)": (8, (A100_40, A100_80)),
    "GPU H100 (8x)": (8, (H100_80,)),
    "TPU v2 (8x)": (8, (TPU_V2_CORE,)),
    "TPU v5e (1x)": (1, (TPU_V5E_CHIP,)),
}


def machine(device: Device, count: int) -> dict:
    """The fingerprint the harness would take on an idle machine of this kind."""
    pool = int(device.memory * GPU_POOL_FRACTION) if device.backend == "gpu" else device.memory
    gpus = [device.memory - GPU_RESERVED] * count if device.backend == "gpu" else []
    host = 2**62  # not judged: the reference may always fall back to the host here
    return {"backend": device.backend, "device_count": count, "available_bytes": pool,
            "reference": {"gpu_free_bytes": gpus, "host_bytes": host}}


def judge(needs: int, has: int, backend: str) -> str:
    if needs * LOWEST_MEASURED_RATIO > has:
        return "refused"
    return "fits" if needs * (1 + memory_slack(backend)) <= has else "tight"


def predict(model: registry.ModelSpec, count: int, devices: tuple[Device, ...]) -> dict:
    cells = []
    for device in devices:
        fp = machine(device, count)
        verdict = planner.plan(model.config(), "bfloat16", fp)
        where = verdict.reference.placement
        cells.append({"verdict": judge(verdict.jax.total, verdict.jax_available, device.backend),
                      "needs_bytes": verdict.jax.total, "has_bytes": verdict.jax_available,
                      "per": device.name, "device": device.name,
                      "reference": where.describe() if where else "nowhere"})
    for cell in cells:
        if cell["verdict"] != "refused":
            return cell
    return cells[-1]


def predictions() -> dict:
    return {
        "about": "Written by `python -m harness.memory.predict` from the planner and the device "
                 "table there; never edit by hand. A prediction is not evidence: the reporter "
                 "shows it only where no result speaks.",
        "band": {"lowest_measured_ratio": LOWEST_MEASURED_RATIO,
                 "slack": {"gpu": memory_slack("gpu"), "tpu": memory_slack("tpu")}},
        "devices": {d.name: {"memory_bytes": d.memory, "source": d.source}
                    for _, cards in COLUMNS.values() for d in cards},
        "cells": {m.id: {column: predict(m, count, cards)
                         for column, (count, cards) in COLUMNS.items()}
                  for m in registry.load_models()},
    }


def render() -> str:
    return json.dumps(predictions(), indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.memory.predict",
                                description=__doc__.split("\n")[0])
    p.add_argument("--output", type=Path, default=OUTPUT)
    p.add_argument("--check", action="store_true",
                   help="exit 1 when the file differs from what the planner predicts now")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text("utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run `python -m harness.memory.predict`",
                  file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, "utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
