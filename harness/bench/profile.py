"""`python -m harness.bench.profile`: where a prompt pass or a decode step spends its time, by
kind of operation, from XLA:CPU's own trace of each compiled operation.

    python -m harness.bench.profile --checkpoint DIR_OR_GGUF --dtype float32 --prompt 1024
    python -m harness.bench.profile --checkpoint DIR_OR_GGUF --dtype bfloat16 --decode 32

Each operation of the compiled programs (a fusion, a dot, a copy) is put in one kind from the
optimized HLO: weight products (dots that read a weight: an argument of the program, or in the
decode loop what the loop carries unchanged, or a view of either), the output head (such a
dot whose output is the vocabulary), attention products (the other dots: QK^T and PV, which
read activations and the KV cache), reductions (norms, softmax), layout copies (copies and
transposes), and the rest (elementwise). Times are summed over XLA's threads, so the total can exceed the wall time by up
to the thread count. A decode step is (generate(1 + N) - generate(1)) / N, with the same prompt.
"""

from __future__ import annotations

import os

# Before jax is imported: XLA:CPU emits a trace event per operation only when asked.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_enable_xprof_traceme=true").strip()

import argparse
import collections
import re
import tempfile
import time
from pathlib import Path

import numpy as np

KINDS = ("weight products", "output head", "attention products", "reductions",
         "layout copies", "elementwise and other")
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s+\(.*\)\s+->\s+.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_OP = re.compile(r"\s([a-z][\w\-]*)\(")
_OPERANDS = re.compile(r"%([\w.\-]+)")
_CALLS = re.compile(r"calls=%?([\w.\-]+)")
_SHAPE = re.compile(r"^\(?\w+\[([\d,]*)\]")
_MOVES = {"copy", "transpose", "parameter", "bitcast", "dynamic-update-slice", "dynamic-slice",
          "slice", "concatenate", "pad", "broadcast", "reshape"}
_CONTROL = {"while", "call", "conditional", "tuple", "get-tuple-element", "parameter",
            "constant", "bitcast"}


def operation_kinds(hlo: str, vocab: int) -> dict[str, str]:
    """Each top-level operation's name in optimized HLO text -> its kind (KINDS)."""
    bodies: dict[str, list[str]] = collections.defaultdict(list)
    current = None
    for line in hlo.splitlines():
        header = _COMPUTATION.match(line)
        if header:
            current = header.group(1)
        elif current and _INSTRUCTION.match(line):
            bodies[current].append(line)
    called = {c for lines in bodies.values() for line in lines for c in _CALLS.findall(line)
              if " fusion(" in line}
    kinds = {}
    for computation, lines in bodies.items():
        if computation in called:  # a fusion's inside: its fusion instruction is timed
            continue
        program = {m.group(1): m.group(2) for m in map(_INSTRUCTION.match, lines) if m}
        weights = _loop_invariants(lines, program)
        for name, rest in program.items():
            if _op(rest) in _CONTROL | {None}:
                continue
            kinds[name] = _kind(_inside(rest, bodies), rest, vocab,
                                weight=_reads_weight(rest, program, bodies, weights))
    return kinds


def _inside(rest: str, bodies: dict[str, list[str]]) -> list[str]:
    """The operation's own line and the lines of the computations it calls."""
    return [rest] + [text for c in _CALLS.findall(rest) for text in bodies.get(c, [])]


def _loop_invariants(lines: list[str], program: dict[str, str]) -> set[str]:
    """In a loop body, the elements of the carried tuple it passes on unchanged (the weights:
    the KV cache and the tokens change every step)."""
    root = next((line for line in lines if line.lstrip().startswith("ROOT")), "")
    if _op(root) != "tuple":
        return set()
    passed = _OPERANDS.findall(root.split("tuple(", 1)[1].split(")", 1)[0])
    invariant = set()
    for name, rest in program.items():
        index = re.search(r"get-tuple-element\(.*\),\s*index=(\d+)", rest)
        if index and int(index.group(1)) < len(passed) and passed[int(index.group(1))] == name:
            invariant.add(name)
    return invariant


def _reads_weight(rest: str, program: dict[str, str], bodies, weights: set[str],
                  depth: int = 8) -> bool:
    """Whether an operand is a weight (an argument of the program: the model state, passed by
    name; in a loop body, what the loop carries unchanged) or a reshaped, copied or transposed
    view of one."""
    for operand in _OPERANDS.findall(rest.split("),", 1)[0]):
        if operand.startswith("state__") or operand in weights:
            return True
        source = program.get(operand)
        if source and depth and {_op(t) for t in _inside(source, bodies)} - {None} <= _MOVES \
                and _reads_weight(source, program, bodies, weights, depth - 1):
            return True
    return False


def _kind(lines: list[str], rest: str, vocab: int, weight: bool) -> str:
    """lines: the operation's own line (`rest`) and those of the computation it calls."""
    if any(_op(text) == "dot" for text in lines):
        if not weight:
            return "attention products"
        shape = _SHAPE.match(rest)
        if shape and shape.group(1).split(",")[-1] == str(vocab):
            return "output head"
        return "weight products"
    ops = {_op(text) for text in lines} - {None}
    if "reduce" in ops:
        return "reductions"
    if ops and ops <= _MOVES:
        return "layout copies"
    return "elementwise and other"


def _op(text: str) -> str | None:
    """The opcode of an instruction line or of its right-hand side ('f32[2]{0} add(%a, %b)')."""
    line = _INSTRUCTION.match(text)
    match = _OP.search(" " + (line.group(2) if line else text))
    return match.group(1) if match else None


def traced_seconds(run, kinds: dict[str, str], repeats: int) -> dict[str, float]:
    """Seconds per call of `run` spent in each kind, summed over XLA's threads."""
    import jax

    with tempfile.TemporaryDirectory() as directory:
        jax.profiler.start_trace(directory)
        for _ in range(repeats):
            run()
        jax.profiler.stop_trace()
        [trace] = Path(directory).rglob("*.xplane.pb")
        data = jax.profiler.ProfileData.from_file(str(trace))
    totals = collections.Counter({kind: 0.0 for kind in KINDS})
    for plane in data.planes:
        for line in plane.lines:
            for event in line.events:
                kind = kinds.get(event.name)
                if kind:
                    totals[kind] += event.duration_ns / 1e9 / repeats
    return dict(totals)


def _wall(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.bench.profile",
                                description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint directory or .gguf file")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--prompt", type=int, default=1024, help="prompt tokens (batch 1)")
    p.add_argument("--decode", type=int, default=0,
                   help="profile N decode steps after a 32-token prompt instead")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import gemma3
    from gemma3.generation import loop

    model = gemma3.from_pretrained(args.checkpoint, dtype=args.dtype, progress=False)
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 256_000, (1, 32 if args.decode else args.prompt))

    def generate(new_tokens: int):
        return lambda: loop.generate(model, ids, max_new_tokens=new_tokens, stop_ids=[])

    runs = [generate(1)] + ([generate(1 + args.decode)] if args.decode else [])
    for run in runs:
        run()  # compiles
    vocab = model.config.text.vocab_size
    kinds: dict[str, str] = {}
    for compiled in loop._COMPILED.values():
        kinds.update(operation_kinds(compiled.as_text(), vocab))
    walls = [_wall(run, args.repeats) for run in runs]
    seconds = [traced_seconds(run, kinds, args.repeats) for run in runs]
    if args.decode:
        per = {k: (seconds[1][k] - seconds[0][k]) / args.decode for k in KINDS}
        wall, what = (walls[1] - walls[0]) / args.decode, f"decode step (mean of {args.decode})"
    else:
        per, wall, what = seconds[0], walls[0], f"{args.prompt}-token prompt pass"
    print(f"{Path(args.checkpoint).name}, {args.dtype}: one {what}, wall {1e3 * wall:.1f} ms; "
          f"thread time by kind ({os.cpu_count()} threads):")
    print("| kind | ms | share |\n|---|---|---|")
    total = sum(per.values()) or 1.0
    for kind in KINDS:
        print(f"| {kind} | {1e3 * per[kind]:.1f} | {100 * per[kind] / total:.0f}% |")
    print(f"| all traced | {1e3 * total:.1f} | 100% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
