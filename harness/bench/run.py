"""`python -m harness.bench` (`nox -s bench`): JAX against transformers on the same synthetic
checkpoint, measured in one run on one machine.

Each (side, dtype) runs in its own process, so peak memory is that side's alone. Per model it
measures prefill tokens/s (batch 1, prompts of 128 and 1024 tokens), decode tokens/s (batch 1
and 8), JAX compile time apart from run time, load time and peak RSS, then prints a table of
JAX/transformers ratios (best dtype each side) and writes everything as JSON.

Both sides are timed through their library's own generate: prefill = generate(1 new token);
decode rate = extra tokens / (generate(1 + N) - generate(1)), after a warm-up of each shape.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.bench import limits
from harness.checkpoints import registry, synthetic
from harness.memory.measure import peak_rss
from harness.system import fingerprint

DEFAULT_MODELS = "gemma-3-270m,gemma-3-1b-pt"
DECODE_PROMPT = 32  # tokens in each decode row's prompt
METRICS = ("prefill", "decode")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(_child(args)))
        return 0
    runs = []
    for spec in registry.select(args.models):
        directory = synthetic.ensure_checkpoint(spec, args.seed, args.cache, progress=_say)
        for side, dtypes in (("jax", args.jax_dtypes), ("torch", args.torch_dtypes)):
            for dtype in dtypes.split(","):
                _say(f"{spec.id}: {side} {dtype}")
                runs.append({"model": spec.id, "side": side, "dtype": dtype,
                             **_run_child(side, directory, dtype, args)})
    machine = limits.machine_limits(runs)
    report: dict[str, Any] = {"machine": _machine(), "settings": vars(args), "runs": runs,
                              "limits": machine, "ratios": ratios(runs, machine, args.new_tokens)}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(machine_line(report["machine"]))
    print(limits_line(machine))
    print(table(report["ratios"]))
    _say(f"wrote {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated model ids")
    p.add_argument("--jax-dtypes", default="float32,bfloat16",
                   help="JAX dtypes to measure; each row takes the faster (which one depends on "
                        "the CPU's flags)")
    p.add_argument("--torch-dtypes", default="float32,bfloat16")
    p.add_argument("--prompts", default="128,1024", help="prefill prompt lengths")
    p.add_argument("--batches", default="1,8", help="decode batch sizes")
    p.add_argument("--new-tokens", type=int, default=32, help="decode steps timed per run")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per shape; best is kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="synthetic checkpoint cache directory")
    p.add_argument("--out", default="bench.json")
    p.add_argument("--child", choices=["jax", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    return p


def _run_child(side: str, directory: Path, dtype: str, args) -> dict:
    cmd = [sys.executable, "-m", "harness.bench", "--child", side, "--checkpoint", str(directory),
           "--dtype", dtype, "--prompts", args.prompts, "--batches", args.batches,
           "--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(args) -> dict:
    timer = JaxTimer(args) if args.child == "jax" else TorchTimer(args)
    prompts = [int(n) for n in args.prompts.split(",")]
    batches = [int(n) for n in args.batches.split(",")]
    out = {"load_s": timer.load_s, "prefill_tokens_per_s": {}, "decode_tokens_per_s": {}}
    rng = np.random.default_rng(0)
    for n in prompts:
        ids = rng.integers(3, 256_000, (1, n))
        out["prefill_tokens_per_s"][str(n)] = n / timer.best(ids, 1)
    for b in batches:
        ids = rng.integers(3, 256_000, (b, DECODE_PROMPT))
        first = timer.best(ids, 1)
        full = timer.best(ids, 1 + args.new_tokens)
        out["decode_tokens_per_s"][str(b)] = b * args.new_tokens / max(full - first, 1e-9)
    out["compile_s"] = timer.compile_s
    out["peak_rss_bytes"] = peak_rss()
    measure = limits.measure_jax if args.child == "jax" else limits.measure_torch
    out["limits"] = measure(args.dtype)  # after the model's peak: the probe's 1 GiB is apart
    return out


class JaxTimer:
    def __init__(self, args):
        import gemma3
        from gemma3.generation.loop import Timings, generate
        from gemma3.runtime import compile_cache

        compile_cache.enable()

        self.generate, self.Timings, self.repeats = generate, Timings, args.repeats
        start = time.perf_counter()
        self.model = gemma3.from_pretrained(args.checkpoint, dtype=args.dtype, progress=False)
        self.load_s = time.perf_counter() - start
        self.compile_s = 0.0

    def best(self, ids, new_tokens: int) -> float:
        """Fastest of `repeats` runs of prefill + decode, compile time excluded."""
        runs = []
        for _ in range(self.repeats + 1):  # the first run compiles this shape
            t = self.Timings()
            start = time.perf_counter()
            self.generate(self.model, ids, max_new_tokens=new_tokens, stop_ids=[], timings=t)
            runs.append(time.perf_counter() - start - t.prefill_compile - t.decode_compile)
            self.compile_s += t.prefill_compile + t.decode_compile
        return min(runs[1:])


class TorchTimer:
    def __init__(self, args):
        import torch
        from transformers import AutoModelForCausalLM

        self.torch, self.repeats = torch, args.repeats
        start = time.perf_counter()
        self.model = AutoModelForCausalLM.from_pretrained(
            args.checkpoint, dtype=getattr(torch, args.dtype)).eval()
        self.load_s = time.perf_counter() - start
        self.compile_s = None  # eager: nothing compiled ahead

    def best(self, ids, new_tokens: int) -> float:
        ids = self.torch.tensor(ids)
        runs = []
        for _ in range(self.repeats + 1):  # the first run warms up this shape
            start = time.perf_counter()
            with self.torch.inference_mode():
                self.model.generate(ids, attention_mask=self.torch.ones_like(ids),
                                    max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                    do_sample=False, pad_token_id=0)
            runs.append(time.perf_counter() - start)
        return min(runs[1:])


def ratios(runs: list[dict], machine: dict | None = None, new_tokens: int = 32) -> list[dict]:
    """Per model and measurement: the best dtype of each side, JAX / transformers, and with
    the machine's limits (limits.machine_limits) the fraction of them each side reaches."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == model and "error" not in r]
        for metric in METRICS:
            key = f"{metric}_tokens_per_s"
            shapes = {s for r in mine for s in r.get(key, {})}
            for shape in sorted(shapes, key=int):
                best = {side: max(((r[key][shape], r["dtype"]) for r in mine
                                   if r["side"] == side and shape in r[key]), default=None)
                        for side in ("jax", "torch")}
                ours, theirs = best["jax"], best["torch"]
                if ours is None or theirs is None:
                    continue
                row = {"model": model, "metric": metric, "shape": int(shape),
                       "jax": ours[0], "jax_dtype": ours[1],
                       "torch": theirs[0], "torch_dtype": theirs[1],
                       "ratio": ours[0] / theirs[0]}
                if machine:
                    row.update(_fractions(row, machine, new_tokens))
                rows.append(row)
    return rows


def _fractions(row: dict, machine: dict, new_tokens: int) -> dict:
    """jax_of_limit, torch_of_limit: each side's rate as a fraction of the machine's limit."""
    text = registry.get(row["model"]).config().text
    out = {}
    for side in ("jax", "torch"):
        rate, dtype = row[side], row[f"{side}_dtype"]
        if row["metric"] == "decode":
            context = DECODE_PROMPT + new_tokens // 2  # the cache's mean length over the steps
            bandwidth = machine["bandwidth_bytes_per_s"]
            value = (limits.decode_fraction(text, dtype, rate, row["shape"], context, bandwidth)
                     if bandwidth else None)
        else:
            matmul = machine["matmul_flops_per_s"].get(dtype)
            value = limits.prefill_fraction(text, row["shape"], rate, matmul) if matmul else None
        out[f"{side}_of_limit"] = value
    return out


def table(rows: list[dict]) -> str:
    head = ["model", "measurement", "JAX tok/s", "transformers tok/s", "JAX / transformers"]
    fractions = any("jax_of_limit" in r for r in rows)
    if fractions:
        head += ["JAX of limit", "transformers of limit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        what = (f"prefill, prompt {r['shape']}" if r["metric"] == "prefill"
                else f"decode, batch {r['shape']}")
        line = (f"| {r['model']} | {what} | {r['jax']:.1f} ({r['jax_dtype']}) | "
                f"{r['torch']:.1f} ({r['torch_dtype']}) | {r['ratio']:.2f}x |")
        if fractions:
            line += "".join(f" {_percent(r.get(f'{side}_of_limit'))} |" for side in ("jax", "torch"))
        lines.append(line)
    return "\n".join(lines)


def limits_line(machine: dict) -> str:
    """`limits: read 21.5 GB/s; matmul float32 180 GFLOP/s, bfloat16 95 GFLOP/s`."""
    rates = ", ".join(f"{dtype} {rate / 1e9:.0f} GFLOP/s"
                      for dtype, rate in sorted(machine["matmul_flops_per_s"].items()))
    return (f"limits (this run, its threads): read {machine['bandwidth_bytes_per_s'] / 1e9:.1f} "
            f"GB/s; matmul {rates or 'not measured'}; decode rows against bandwidth, prefill "
            "rows against the matmul rate of their dtype")


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def machine_line(machine: dict) -> str:
    """`CPU: <model>, <cores> cores; flags: avx2 avx512f ... (none of: amx_bf16 ...)`: which
    kernels each side could use decide the ratios."""
    host = machine["host"]
    flags = host.get("cpu_flags", [])
    missing = sorted(fingerprint.VECTOR_FLAGS - set(flags))
    return (f"CPU: {host['cpu']}, {host['cores']} cores; flags: {' '.join(flags) or 'none'}"
            + (f" (not: {' '.join(missing)})" if missing else ""))


def _machine() -> dict:
    return fingerprint.fingerprint()


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)

