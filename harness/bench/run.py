"""`python -m harness.bench` (`nox -s bench`): JAX against transformers on the same synthetic
checkpoint, measured in one run on one machine; with `--gguf FILE` also on that file, beside
llama.cpp running it in its own quantized format (harness.bench.llamacpp).

Each (side, dtype) runs in its own process, so peak memory is that side's alone. Per model it
measures prefill tokens/s (batch 1, prompts of 128 and 1024 tokens), decode tokens/s (batch 1
and 8), a whole generate call (an 8-token prompt and 64 new tokens, batch 1: new tokens / the
call's seconds, the prompt and first token included), JAX compile time apart from run time,
load time and peak RSS, then prints a table of JAX/transformers (and JAX/llama.cpp) ratios,
best dtype each side, each side's load time beside it, and writes everything as JSON.

Every side is timed through its library's own generate: prefill = generate(1 new token);
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

from harness.bench import limits, llamacpp
from harness.checkpoints import registry, synthetic
from harness.memory.measure import peak_rss
from harness.system import fingerprint

DEFAULT_MODELS = "gemma-3-270m,gemma-3-1b-pt"
DECODE_PROMPT = 32  # tokens in each decode row's prompt
GENERATE_PROMPT = 8  # tokens in the whole-call row's prompt
METRICS = ("prefill", "decode", "generate")
PEERS = ("torch", llamacpp.SIDE)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(_child(args)))
        return 0
    runs, texts = [], {}
    left_out = llamacpp.missing_reason() if args.gguf else None
    if left_out:
        _say(left_out)
    for model, directory, text, sides in _subjects(args, with_llamacpp=left_out is None):
        texts[model] = text
        for side, dtypes in sides:
            for dtype in dtypes.split(","):
                _say(f"{model}: {side} {dtype}")
                runs.append({"model": model, "side": side, "dtype": dtype,
                             **_run_child(side, directory, dtype, args)})
    machine = limits.machine_limits(runs)
    report: dict[str, Any] = {"machine": _machine(), "settings": vars(args), "runs": runs,
                              "limits": machine,
                              "ratios": ratios(runs, machine, args.new_tokens, texts)}
    if left_out:
        report["left_out"] = left_out
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(machine_line(report["machine"]))
    print(limits_line(machine))
    print(table(report["ratios"]))
    print(load_lines(runs))
    if left_out:
        print(left_out)
    _say(f"wrote {args.out}")
    return 0


def _subjects(args, with_llamacpp: bool):
    """(model id, checkpoint, text config, [(side, dtypes)]) to measure: the synthetic
    checkpoints of --models, then the --gguf file (its name is its model id), with llama.cpp
    beside it where it can run."""
    sides = [("jax", args.jax_dtypes), ("torch", args.torch_dtypes)]
    models = args.models if args.models is not None else "" if args.gguf else DEFAULT_MODELS
    for spec in registry.select(models) if models else []:
        directory = synthetic.ensure_checkpoint(spec, args.seed, args.cache, progress=_say)
        yield spec.id, directory, spec.config().text, sides
    if args.gguf:
        from gemma3.ckpt.gguf.config import read_config

        path = Path(args.gguf)
        peer = [(llamacpp.SIDE, llamacpp.file_type(path))] if with_llamacpp else []
        yield path.name, path, read_config(path).text, sides + peer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=None,
                   help=f"comma-separated model ids (default {DEFAULT_MODELS}; none with --gguf)")
    p.add_argument("--gguf", help="measure this GGUF file too: JAX and transformers on it "
                                  "dequantized, llama.cpp on it as stored (when llama_cpp is "
                                  "importable)")
    p.add_argument("--jax-dtypes", default="float32,bfloat16",
                   help="JAX dtypes to measure; each row takes the faster (which one depends on "
                        "the CPU's flags)")
    p.add_argument("--torch-dtypes", default="float32,bfloat16")
    p.add_argument("--prompts", default="128,1024", help="prefill prompt lengths")
    p.add_argument("--batches", default="1,8", help="decode batch sizes")
    p.add_argument("--new-tokens", type=int, default=32, help="decode steps timed per run")
    p.add_argument("--generate-tokens", type=int, default=64,
                   help="new tokens of the whole-call row (0: no such row)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per shape; best is kept")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="synthetic checkpoint cache directory")
    p.add_argument("--out", default="bench.json")
    p.add_argument("--child", choices=["jax", "torch", llamacpp.SIDE], help=argparse.SUPPRESS)
    p.add_argument("--checkpoint", help=argparse.SUPPRESS)
    p.add_argument("--dtype", help=argparse.SUPPRESS)
    return p


def _run_child(side: str, directory: Path, dtype: str, args) -> dict:
    batches = "1" if side == llamacpp.SIDE else args.batches  # its binding runs one sequence
    cmd = [sys.executable, "-m", "harness.bench", "--child", side, "--checkpoint", str(directory),
           "--dtype", dtype, "--prompts", args.prompts, "--batches", batches,
           "--new-tokens", str(args.new_tokens), "--generate-tokens", str(args.generate_tokens),
           "--repeats", str(args.repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        tail = done.stderr.strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(args) -> dict:
    timer: Any = {"jax": JaxTimer, "torch": TorchTimer,
                  llamacpp.SIDE: llamacpp.LlamaCppTimer}[args.child](args)
    prompts = [int(n) for n in args.prompts.split(",")]
    batches = [int(n) for n in args.batches.split(",")]
    out: dict[str, Any] = {"load_s": timer.load_s, "prefill_tokens_per_s": {},
                           "decode_tokens_per_s": {}, "generate_tokens_per_s": {}}
    rng = np.random.default_rng(0)
    for n in prompts:
        ids = rng.integers(3, 256_000, (1, n))
        out["prefill_tokens_per_s"][str(n)] = n / timer.best(ids, 1)
    for b in batches:
        ids = rng.integers(3, 256_000, (b, DECODE_PROMPT))
        first = timer.best(ids, 1)
        full = timer.best(ids, 1 + args.new_tokens)
        out["decode_tokens_per_s"][str(b)] = b * args.new_tokens / max(full - first, 1e-9)
    if args.generate_tokens:
        ids = rng.integers(3, 256_000, (1, GENERATE_PROMPT))
        out["generate_tokens_per_s"][str(args.generate_tokens)] = (
            args.generate_tokens / timer.best(ids, args.generate_tokens))
    out["compile_s"] = timer.compile_s
    out["peak_rss_bytes"] = peak_rss()
    if args.child == llamacpp.SIDE:  # its quantized weights: what a decode step reads
        out["weight_bytes"] = llamacpp.weight_bytes(args.checkpoint)
    else:  # after the model's peak: the probe's 1 GiB is apart
        out["limits"] = (limits.measure_jax if args.child == "jax" else limits.measure_torch)(
            args.dtype)
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
        path = Path(args.checkpoint)
        # A GGUF file is read (and dequantized) by transformers from its directory.
        where = ({"pretrained_model_name_or_path": path.parent, "gguf_file": path.name}
                 if path.suffix == ".gguf" else {"pretrained_model_name_or_path": path})
        start = time.perf_counter()
        self.model = AutoModelForCausalLM.from_pretrained(
            **where, dtype=getattr(torch, args.dtype)).eval()
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


def ratios(runs: list[dict], machine: dict | None = None, new_tokens: int = 32,
           texts: dict | None = None) -> list[dict]:
    """Per model and measurement: the best dtype of each side, JAX / transformers (`ratio`) and
    JAX / llama.cpp (`ratio_llamacpp`) where that side ran, and with the machine's limits
    (limits.machine_limits) the fraction of them each side reaches. texts: each model's text
    config (default: the registry's)."""
    rows = []
    for model in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == model and "error" not in r]
        for metric in METRICS:
            key = f"{metric}_tokens_per_s"
            shapes = {s for r in mine for s in r.get(key, {})}
            for shape in sorted(shapes, key=int):
                best: dict[str, dict] = {}  # side -> its fastest run at this shape
                for r in mine:
                    if shape in r.get(key, {}) and (
                            r["side"] not in best or r[key][shape] > best[r["side"]][key][shape]):
                        best[r["side"]] = r
                if "jax" not in best or not set(PEERS) & set(best):
                    continue
                row: dict[str, Any] = {"model": model, "metric": metric, "shape": int(shape)}
                for side, run in best.items():
                    row.update({side: run[key][shape], f"{side}_dtype": run["dtype"]})
                    if side != "jax":
                        suffix = "" if side == "torch" else f"_{side}"
                        row[f"ratio{suffix}"] = row["jax"] / row[side]
                if llamacpp.SIDE in best:
                    row[f"{llamacpp.SIDE}_weight_bytes"] = best[llamacpp.SIDE]["weight_bytes"]
                if machine:
                    text = (texts or {}).get(model) or registry.get(model).config().text
                    row.update(_fractions(row, machine, new_tokens, text))
                rows.append(row)
    return rows


def _fractions(row: dict, machine: dict, new_tokens: int, text) -> dict:
    """<side>_of_limit: each side's rate as a fraction of the machine's limit (None where the
    limit does not apply: the whole-call row, llama.cpp's quantized prompt pass)."""
    out: dict[str, float | None] = {}
    for side in ("jax", *PEERS):
        if side not in row:
            continue
        rate, dtype, value = row[side], row[f"{side}_dtype"], None
        bandwidth = machine["bandwidth_bytes_per_s"]
        if row["metric"] == "decode" and bandwidth:
            context = DECODE_PROMPT + new_tokens // 2  # the cache's mean length over the steps
            if side == llamacpp.SIDE:
                value = limits.decode_fraction(text, llamacpp.KV_DTYPE, rate, row["shape"],
                                               context, bandwidth,
                                               weight_bytes=row[f"{side}_weight_bytes"])
            else:
                value = limits.decode_fraction(text, dtype, rate, row["shape"], context,
                                               bandwidth)
        elif row["metric"] == "prefill" and machine["matmul_flops_per_s"].get(dtype):
            value = limits.prefill_fraction(text, row["shape"], rate,
                                            machine["matmul_flops_per_s"][dtype])
        out[f"{side}_of_limit"] = value
    return out


SIDE_NAMES = {"jax": "JAX", "torch": "transformers", llamacpp.SIDE: "llama.cpp"}


def table(rows: list[dict]) -> str:
    """The markdown table: each side's best rate with its dtype, the ratios, and where measured
    the share of the machine's limit; the llama.cpp columns only where llama.cpp ran."""
    peers = [p for p in PEERS if any(p in r for r in rows)]
    head = ["model", "measurement", "JAX tok/s", *(f"{SIDE_NAMES[p]} tok/s" for p in peers),
            *(f"JAX / {SIDE_NAMES[p]}" for p in peers)]
    sides = ["jax", *peers]
    fractions = any("jax_of_limit" in r for r in rows)
    if fractions:
        head += [f"{SIDE_NAMES[s]} of limit" for s in sides]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], _measurement(r)]
        cells += [f"{r[s]:.1f} ({r[f'{s}_dtype']})" if s in r else "n/a" for s in sides]
        cells += [f"{r[key]:.2f}x" if key in r else "n/a"
                  for key in ("ratio" if p == "torch" else f"ratio_{p}" for p in peers)]
        if fractions:
            cells += [_percent(r.get(f"{s}_of_limit")) for s in sides]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_lines(runs: list[dict]) -> str:
    """Per model, each (side, dtype)'s load time (from_pretrained, or llama.cpp opening the
    file, in a fresh process: the first call pays the page faults of fresh memory), and the
    JAX / peer ratio of the fastest of each side."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == model and r.get("load_s") is not None]
        if not mine:
            continue
        times = ", ".join(f"{SIDE_NAMES[r['side']]} {r['dtype']} {r['load_s']:.2f} s" for r in mine)
        best = {side: min(r["load_s"] for r in mine if r["side"] == side)
                for side in dict.fromkeys(r["side"] for r in mine)}
        versus = [f"{SIDE_NAMES[p]} {best['jax'] / best[p]:.2f}x" for p in PEERS
                  if "jax" in best and p in best]
        lines.append(f"load, {model}: {times}" + (
            f" (JAX's fastest / each peer's fastest: {', '.join(versus)})" if versus else ""))
    return "\n".join(lines)


def _measurement(row: dict) -> str:
    if row["metric"] == "prefill":
        return f"prefill, prompt {row['shape']}"
    if row["metric"] == "decode":
        return f"decode, batch {row['shape']}"
    return f"generate, {GENERATE_PROMPT}-token prompt + {row['shape']} new"


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

