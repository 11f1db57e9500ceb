"""The command line of `python -m harness`: run every model that fits this machine through the
checks and write a result file to results/ (see docs/result-format.md).

    python -m harness [--models gemma-3-270m,gemma-3-1b-it] [--dtypes float32,bfloat16]
                      [--checkpoint DIR_OR_HUB_ID] [--backend cpu|gpu|tpu] [--seed 0]
                      [--results results] [--timeout SECONDS] [--cache DIR] [--threads N]

Works offline (synthetic checkpoints) and without nox, in any environment that has jax, flax,
torch, transformers, pytest, pytest-json-report and psutil (harness/system/environment.py names
every missing one up front).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from harness.system.environment import require_packages

require_packages()  # one message naming every missing package, before an import below fails

from contract.checks import DTYPES
from harness.checkpoints import registry
from harness.run import preflight
from harness.run.results import scrub
from harness.run.runner import Options, run
from harness.system.fingerprint import BACKENDS
from harness.system.processes import Interrupted, stop_on_signals

MAX_SEED = 2**63 - 1  # numpy's seed sequence takes any int; the result schema 20 digits
PROG = "python -m harness"


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, exit 2 (argparse prints the whole usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def positive(kind):
    def convert(text: str):
        value = kind(text)
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in "invalid int value"
    return convert


def parse(argv: list[str]) -> Options:
    p = Parser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument("--models", default=None,
                   help="comma-separated model ids (default: all, smallest first)")
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--checkpoint", default=None,
                   help="real weights: a local directory, a .gguf file or a hub id (one model "
                        "only)")
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="fail unless JAX runs on this backend")
    p.add_argument("--seed", type=int, default=0, help="synthetic weights and prompts")
    p.add_argument("--results", default=str(registry.REPO_ROOT / "results"))
    p.add_argument("--timeout", type=positive(float), default=3600.0,
                   help="seconds per model process (reference, checks)")
    p.add_argument("--cache", default=None,
                   help="synthetic checkpoints and reference outputs (default "
                        "$GEMMA3_HARNESS_CACHE or ~/.cache/gemma3-harness)")
    p.add_argument("--threads", type=positive(int), default=None,
                   help="CPU threads per model process (default: the idle cores)")
    args = p.parse_args(argv)
    for option in ("models", "checkpoint", "cache", "results"):
        if getattr(args, option) is not None and not getattr(args, option).strip():
            p.error(f"--{option} is empty; leave it out for the default")
    if args.models is not None and not [m for m in args.models.split(",") if m.strip()]:
        p.error(f"--models {args.models!r} names no model id")
    try:
        models = registry.select(args.models)
    except ValueError as e:
        p.error(str(e))
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        p.error(f"--dtypes {args.dtypes!r}: expected a comma-separated subset of "
                f"{', '.join(DTYPES)}")
    if len(set(dtypes)) != len(dtypes):
        p.error(f"--dtypes {args.dtypes!r} names a dtype twice")
    if args.checkpoint and len(models) != 1:
        p.error(f"--checkpoint names one model's weights; pass exactly one --models id "
                f"(got {len(models)})")
    if not 0 <= args.seed <= MAX_SEED:
        p.error(f"--seed {args.seed}: must be >= 0 and at most 2**63 - 1")
    command = scrub(shlex.join(["python", "-m", "harness", *argv]))
    return Options(models, dtypes, args.checkpoint, args.backend, args.seed, Path(args.results),
                   args.timeout, args.cache, args.threads, command)


def main(argv: list[str] | None = None) -> int:
    """SIGINT / SIGTERM stop the run cleanly (exit 130 / 143, see harness/system/processes.py)."""
    with stop_on_signals():
        try:
            opts = parse(sys.argv[1:] if argv is None else argv)
            preflight.check_run(opts.results, opts.cache, opts.models, opts.checkpoint)
            return run(opts)
        except preflight.Refused as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 2
        except Interrupted as e:  # before any model ran (run() reports its own)
            print(f"{PROG}: stopped by {e} before any model ran; nothing written",
                  file=sys.stderr)
            return e.exit_code

