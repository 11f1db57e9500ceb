"""`python -m harness`: run every model that fits this machine through the checks and write a
result file to results/ (see docs/result-format.md).

    python -m harness [--models gemma-3-270m,gemma-3-1b-it] [--dtypes float32,bfloat16]
                      [--checkpoint DIR_OR_HUB_ID] [--backend cpu|gpu|tpu] [--seed 0]
                      [--results results] [--timeout SECONDS] [--cache DIR] [--threads N]

Works offline (synthetic checkpoints) and without nox, in any environment that has jax, flax,
torch, transformers, pytest and pytest-json-report.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from harness import registry
from harness.fingerprint import BACKENDS
from harness.results import scrub
from harness.runner import Options, run

DTYPES = ("float32", "bfloat16")


def parse(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=None,
                   help="comma-separated model ids (default: all, smallest first)")
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--checkpoint", default=None,
                   help="real weights: a local directory, a .gguf file or a hub id (one model "
                        "only)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="fail unless JAX runs on this backend")
    p.add_argument("--seed", type=int, default=0, help="synthetic weights and prompts")
    p.add_argument("--results", type=Path, default=registry.REPO_ROOT / "results")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds per model process (reference, checks)")
    p.add_argument("--cache", default=None,
                   help="synthetic checkpoints and reference outputs (default "
                        "$GEMMA3_HARNESS_CACHE or ~/.cache/gemma3-harness)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per model process (default: the idle cores)")
    args = p.parse_args(argv)
    try:
        models = registry.select(args.models)
    except ValueError as e:
        p.error(str(e))
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        p.error(f"--dtypes {args.dtypes!r}: expected a comma-separated subset of "
                f"{', '.join(DTYPES)}")
    if args.checkpoint and len(models) != 1:
        p.error(f"--checkpoint names one model's weights; pass exactly one --models id "
                f"(got {len(models)})")
    if args.seed < 0:
        p.error("--seed must be >= 0")
    command = scrub(shlex.join(["python", "-m", "harness", *argv]))
    return Options(models, dtypes, args.checkpoint, args.backend, args.seed, args.results,
                   args.timeout, args.cache, args.threads, command)


def main(argv: list[str] | None = None) -> int:
    return run(parse(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
