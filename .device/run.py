"""One prepared run on a lent, offline GPU machine (README: "Offline machines"):

    python3 .device/run.py OUT            # on the device: every model that fits, then the bench
    python3 .device/run.py OUT --backend cpu --models gemma-3-270m   # the same, dry, here
    python3 .device/run.py --download     # here, with network: the wheels into .device/wheels/

1. The environment: every wheel of .device/wheels.txt must be in .device/wheels/ (a missing one
   is refused with the whole list and the download command, before any time is spent); the
   wheels whose module the image lacks are installed into a scratch folder put on PYTHONPATH;
   then every package the harness needs must import (harness/system/environment.py).
2. `python -m harness --dtypes bfloat16` over the models, smallest first (the planner refuses
   what does not fit the device), in one result file, until the time budget's harness share
   is spent: at that moment the harness is stopped (SIGTERM: the finished models stay in the
   file) and every model it did not finish is recorded as not run, never as a failure. Models
   whose synthetic checkpoints would not fit the free disk are left out the same way.
3. `python -m harness.bench` for the 270m and the 1b in bfloat16, with what is left.

OUT receives results/<the result file>, bench.json, device-run.log (everything printed) and
device-run.json (what ran, what was left out and why, the times). At most 8 files come back from
a lent machine, so OUT holds no more. Standard library only until the wheels are in place.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "wheels.txt"
WHEELS = HERE / "wheels"
BUDGET_S = 510.0  # the whole run, wheels to bench: ends inside 9 minutes (a call allows 10)
BENCH_S = 150.0  # reserved at the end for the bench (270m and 1b, bfloat16)
BENCH_MODELS = ("gemma-3-270m", "gemma-3-1b-pt")
GRACE_S = 30.0  # after SIGTERM, before SIGKILL to the whole process group
DISK_MARGIN = 1.2  # synthetic checkpoints (bf16, the hub's size) plus the reference's outputs
# `pip download` for the device's Python (3.12, x86-64 manylinux), one wheel per line, no deps:
# the manifest already names every dependency the image lacks.
DOWNLOAD = ["download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
            "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
            "--platform", "any"]


def manifest(path: Path = MANIFEST) -> list[tuple[str, str]]:
    """(wheel file name, module it provides) per line of .device/wheels.txt."""
    rows = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            fields = line.split()
            if len(fields) != 2 or not fields[0].endswith(".whl"):
                raise SystemExit(f"error: {path}:{number}: expected `<file>.whl <module>`, "
                                 f"got {line!r}")
            rows.append((fields[0], fields[1]))
    return rows


def missing_wheels(rows: list[tuple[str, str]], folder: Path = WHEELS) -> list[str]:
    return [name for name, _ in rows if not (folder / name).is_file()]


def refusal(missing: list[str], folder: Path = WHEELS) -> str:
    return (f"{len(missing)} wheel(s) of .device/wheels.txt are not in {folder}: "
            f"{', '.join(missing)}. On a networked machine run `python .device/run.py "
            f"--download`, then carry that folder with the repository")


def requirement(wheel: str) -> str:
    """`pytest_json_report-1.5.0-py3-none-any.whl` -> `pytest_json_report==1.5.0`."""
    name, version = wheel.split("-")[:2]
    return f"{name}=={version}"


def download(rows: list[tuple[str, str]], folder: Path) -> int:
    folder.mkdir(exist_ok=True)
    args = [sys.executable, "-m", "pip", *DOWNLOAD, "-d", str(folder),
            *(requirement(name) for name, _ in rows)]
    done = subprocess.run(args, check=False)
    if done.returncode == 0 and (gone := missing_wheels(rows, folder)):
        print(f"error: pip saved other file names than the manifest's: {', '.join(gone)}",
              file=sys.stderr)
        return 1
    size = sum((folder / name).stat().st_size for name, _ in rows if (folder / name).exists())
    print(f"{len(rows)} wheels, {size / 2**20:.1f} MiB, in {folder}")
    return done.returncode


class Log:
    """Every line to stdout and to OUT/device-run.log, with the seconds since the start."""

    def __init__(self, path: Path):
        self.start = time.monotonic()
        self.file = path.open("a", encoding="utf-8")

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def __call__(self, text: str, stamp: bool = True) -> None:
        line = f"[{self.elapsed():6.1f} s] {text}" if stamp else text
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def install_missing(rows: list[tuple[str, str]], wheels: Path, site: Path, log: Log
                    ) -> dict[str, str]:
    """Installs the wheels whose module does not import here into site; the environment that
    puts site on PYTHONPATH for the harness's processes."""
    import importlib.util

    absent = [name for name, module in rows if importlib.util.find_spec(module) is None]
    env = {"HF_HUB_OFFLINE": "1",  # synthetic weights only: never wait on an unreachable hub
           **os.environ, "PYTHONPATH": os.pathsep.join(
               [str(site), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    if not absent:
        log("environment: every carried package is already installed")
        return env
    log(f"environment: installing {len(absent)} carried wheel(s) into {site}")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index",
                           "--no-deps", "--no-compile", "--upgrade", "--target", str(site),
                           *(str(wheels / name) for name in absent)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: pip could not install the carried wheels: "
                         f"{done.stderr.strip()[-2000:]}")
    return env


def check_imports(env: dict[str, str]) -> str | None:
    """The harness's own package check (harness/system/environment.py), as its processes see
    the environment; the problem, or None."""
    code = ("from harness.system.environment import problems; e, w = problems(); "
            "print(e or w or '')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or (done.stderr.strip()[-2000:] if done.returncode else None)


def plan(models: list[str], cache: Path) -> tuple[list[str], dict[str, str]]:
    """The models whose synthetic checkpoints fit the free disk together, smallest first, and
    why the others are left out."""
    from harness.checkpoints import registry

    free = shutil.disk_usage(cache if cache.exists() else cache.parent).free
    chosen, left, used = [], {}, 0
    for spec in registry.select(",".join(models)):
        need = int(spec.hub_bytes * DISK_MARGIN)
        if used + need > free:
            left[spec.id] = (f"not run: disk (its checkpoint needs {need / 1e9:.1f} GB, "
                             f"{(free - used) / 1e9:.1f} GB free after the smaller models)")
            continue
        chosen.append(spec.id)
        used += need
    return chosen, left


def run_until(args: list[str], env: dict[str, str], deadline: float, log: Log) -> tuple[int, bool]:
    """Runs args, its output to the log; SIGTERM at the deadline (monotonic seconds). (exit
    code, stopped for time)."""
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1,
                            start_new_session=True)
    stopped = False

    def stop():
        nonlocal stopped
        stopped = True
        log(f"time budget reached: stopping {args[2]} (SIGTERM)")
        proc.terminate()  # the harness stops its model processes and keeps finished models
        kill.start()

    def kill_group():  # whatever still runs a while after SIGTERM, its children too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop)
    kill = threading.Timer(GRACE_S, kill_group)
    timer.daemon = kill.daemon = True
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            log("    " + line.rstrip("\n"), stamp=False)
        code = proc.wait()
    finally:
        timer.cancel()
        kill.cancel()
    return code, stopped


def _outcome(model: str, entry: dict, tests: list[dict]) -> str:
    """`ran (6 passed)`, `not_supported: needs ...`, `failed: oom ...` for one model."""
    if entry["status"] != "ran":
        return f"{entry['status']}: {entry['reason']}"
    outcomes = [t["outcome"] for t in tests if f"[{model}-" in t["nodeid"]]
    counts = ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes)))
    return f"ran ({counts or 'no tests'})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 .device/run.py", description=__doc__.split("\n")[0])
    p.add_argument("out", nargs="?", help="output folder (created)")
    p.add_argument("--download", action="store_true", help="fetch the wheels, then exit")
    p.add_argument("--backend", choices=["gpu", "cpu", "tpu"], default="gpu")
    p.add_argument("--models", default=None, help="comma-separated ids (default: all)")
    p.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole run")
    p.add_argument("--bench-seconds", type=float, default=BENCH_S)
    p.add_argument("--cache", default="/tmp/gemma3-device-cache")
    p.add_argument("--site", default="/tmp/gemma3-device-site", help="where wheels install")
    p.add_argument("--wheels", default=str(WHEELS), help="the carried wheels' folder")
    args = p.parse_args(argv)
    rows = manifest()
    wheels = Path(args.wheels)
    if args.download:
        return download(rows, wheels)
    if not args.out:
        p.error("name the output folder (or pass --download)")
    if missing := missing_wheels(rows, wheels):
        print(f"error: {refusal(missing, wheels)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    (out / "results").mkdir(parents=True, exist_ok=True)
    log = Log(out / "device-run.log")
    start = time.monotonic()
    env = install_missing(rows, wheels, Path(args.site), log)
    if problem := check_imports(env):
        log(f"error: {problem}")
        return 2
    sys.path[:0] = [str(REPO)]
    all_models = args.models.split(",") if args.models else None
    from harness.checkpoints import registry

    ids = [m.id for m in registry.select(args.models)]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    chosen, left = plan(ids, cache)
    summary: dict = {"backend": args.backend, "budget_s": args.budget, "models": dict(left)}
    harness_end = start + args.budget - args.bench_seconds
    code, stopped = 0, False
    if chosen:  # (an empty --models would mean every model)
        log(f"harness: {', '.join(chosen)} in bfloat16, until {harness_end - start:.0f} s")
        code, stopped = run_until(
            [sys.executable, "-m", "harness", "--dtypes", "bfloat16", "--backend", args.backend,
             "--models", ",".join(chosen), "--results", str(out / "results"),
             "--cache", str(cache), "--timeout", str(max(60.0, args.budget))],
            env, harness_end, log)
    summary["harness"] = {"exit": code, "stopped_for_time": stopped,
                          "seconds": round(time.monotonic() - start, 1)}
    files = sorted((out / "results").glob("*.json"))
    data: dict = (json.loads(files[-1].read_text("utf-8")) if files
                  else {"provenance": {"models": {}}, "tests": []})
    recorded = data["provenance"]["models"]
    for model in chosen:
        summary["models"][model] = (_outcome(model, recorded[model], data["tests"])
                                    if model in recorded
                                    else "not run: the time budget ended first")
    bench = [m for m in BENCH_MODELS if all_models is None or m in all_models]
    if bench:
        log(f"bench: {', '.join(bench)} in bfloat16, until {args.budget:.0f} s")
        bench_start = time.monotonic()
        bcode, bstopped = run_until(
            [sys.executable, "-m", "harness.bench", "--models", ",".join(bench),
             "--jax-dtypes", "bfloat16", "--torch-dtypes", "bfloat16", "--cache", str(cache),
             "--out", str(out / "bench.json")], env, start + args.budget, log)
        summary["bench"] = {"models": bench, "exit": bcode, "stopped_for_time": bstopped,
                            "seconds": round(time.monotonic() - bench_start, 1)}
    summary["seconds"] = round(time.monotonic() - start, 1)
    (out / "device-run.json").write_text(json.dumps(summary, indent=1) + "\n")
    for model, what in summary["models"].items():
        log(f"{model}: {what}")
    log(f"done in {summary['seconds']:.0f} s; {out}")
    # A failed check is evidence (exit 1); a stop for time is the plan, not a failure.
    return 0 if code in (0, 1) or stopped else code


if __name__ == "__main__":
    sys.exit(main())
