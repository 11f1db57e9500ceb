"""The main job, model by model (smallest first): plan memory, resolve the checkpoint, run the
transformers reference in its own process, run the JAX checks in another, and rewrite the
result file. A model's process dying (OOM kill, timeout, crash) is recorded as that model's
failure with its cause; the run goes on with the next model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from contract.checks import CHECKS_DIR
from contract.results import emulated_devices
from harness.checkpoints import registry
from harness.checkpoints import resolve as checkpoints
from harness.memory import planner
from harness.parity.prompts import make_prompts
from harness.reference.store import DONE, reference_dir
from harness.run.results import ResultFile, model_entry, project, utc_stamp
from harness.system.cache import discard_partials, writer_lock
from harness.system.processes import Interrupted, cause, deferred_signals, run_child
from harness.system.threads import allocator_env, auto_threads, child_env

JSON_OMIT = ["collectors", "log", "streams", "warnings", "traceback"]
VERDICT_WORDS = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")


@dataclasses.dataclass
class Options:
    models: list[registry.ModelSpec]
    dtypes: list[str]
    checkpoint: str | None
    backend: str | None
    seed: int
    results: Path
    timeout: float | None
    cache: str | None
    threads: int | None
    command: str


class Progress:
    """`[  12.3 s] gemma-3-1b-it: reference (float32, bfloat16)` lines on stderr."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self, model: str, stage: str) -> None:
        print(f"[{time.perf_counter() - self.start:8.1f} s] {model}: {stage}",
              file=sys.stderr, flush=True)


class FingerprintError(RuntimeError):
    pass


def take_fingerprint(backend: str | None) -> dict:
    """The fingerprint, taken in a subprocess (see harness/system/fingerprint.py for why)."""
    args = [sys.executable, "-m", "harness.system.fingerprint"] + (["--backend", backend] if backend
                                                            else [])
    done = subprocess.run(args, capture_output=True, text=True, cwd=registry.REPO_ROOT,
                          env=allocator_env(), check=False)
    if done.returncode != 0:
        raise FingerprintError(done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                               else f"harness.system.fingerprint exited {done.returncode}")
    return json.loads(done.stdout)


def provenance(fp: dict, command: str) -> dict:
    return {"project": project(registry.REPO_ROOT), "versions": fp["versions"],
            "backend": fp["backend"], "device_kind": fp["device_kind"],
            "device_count": fp["device_count"],
            "emulated_devices": emulated_devices(fp["backend"], fp["device_count"]),
            "memory_per_device_bytes": fp["memory_per_device_bytes"], "host": fp["host"],
            "utc_time": utc_stamp_now(), "command": command}


def utc_stamp_now() -> str:
    from datetime import UTC, datetime

    return utc_stamp(datetime.now(UTC))


def memory_now(fp: dict) -> dict:
    """The fingerprint with host memory re-read (other work on the machine changes it)."""
    fp = json.loads(json.dumps(fp))
    free = psutil.virtual_memory().available
    if fp["backend"] == "cpu":
        fp["available_bytes"] = free
    fp["reference"]["host_bytes"] = free
    return fp


def run(opts: Options) -> int:
    progress = Progress()
    try:
        fp = take_fingerprint(opts.backend)
    except FingerprintError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    progress("run", f"{fp['backend']} / {fp['device_kind']} x{fp['device_count']}, "
                    f"{len(opts.models)} model(s), dtypes {','.join(opts.dtypes)}")
    result = ResultFile(opts.results, provenance(fp, opts.command))
    spec = opts.models[0]
    try:
        for spec in opts.models:
            path = _run_and_record(spec, opts, fp, result, progress)
    except Interrupted as stop:
        return _stopped(stop, spec.id, result)
    progress("run", f"wrote {path}")
    return result.document()["exitcode"]


def _run_and_record(spec, opts: Options, fp: dict, result: ResultFile, progress) -> Path:
    """Runs one model and rewrites the result file with it; the file's path."""
    started = time.perf_counter()
    entry, tests, deselected = run_model(spec, opts, memory_now(fp), progress)
    with deferred_signals():  # a stop waits for the file to be whole
        result.add_model(spec.id, entry, tests, deselected)
        path = result.write()
    counts = ", ".join(f"{n} {o}" for o in ("passed", "failed", "error", "skipped")
                       if (n := sum(t["outcome"] == o for t in tests)))
    progress(spec.id, f"{entry['status']} in {time.perf_counter() - started:.0f} s"
                      f"{' (' + counts + ')' if counts else ''}"
                      f"{': ' + entry['reason'] if entry['reason'] else ''}")
    return path


def _stopped(stop: Interrupted, model: str, result: ResultFile) -> int:
    """One line for a run stopped by SIGINT/SIGTERM; the models finished before are kept."""
    done = list(result.provenance["models"])
    where = (f"after {model}" if model in done else
             f"during {model}: its processes were killed and its partial files removed")
    kept = (f"{len(done)} finished model(s) kept in {result.path}" if done
            else "no model had finished, no result file written")
    print(f"python -m harness: stopped by {stop} {where}; {kept}", file=sys.stderr)
    return stop.exit_code


def run_model(spec: registry.ModelSpec, opts: Options, fp: dict, progress):
    """(provenance entry, pytest-json-report tests, deselected count) for one model."""
    cfg = spec.config()
    mplan = planner.plan_model(cfg, opts.dtypes, fp)
    if not mplan.run_dtypes:
        known = checkpoints.describe(spec, opts.checkpoint, opts.seed, opts.cache)
        return model_entry(known.source, "not_supported", mplan.reason(), mplan.predicted_bytes,
                           mplan.available_bytes, [], known.quantization), [], 0
    dtypes = mplan.run_dtypes
    progress(spec.id, f"checkpoint (planner: {', '.join(_need(v) for v in mplan.verdicts)})")
    ckpt = checkpoints.resolve(spec, opts.checkpoint, opts.seed, opts.cache,
                               lambda stage: progress(spec.id, stage))
    placements = mplan.reference_placements()
    entry = model_entry(ckpt.source, "ran", mplan.reason(), mplan.predicted_bytes,
                        mplan.available_bytes, dtypes, ckpt.quantization,
                        {d: where.describe() for d, where in placements.items()})
    threads = opts.threads or auto_threads()
    refdirs = {d: reference_dir(opts.cache, spec.id, d, ckpt.key, make_prompts(cfg, opts.seed))
               for d in dtypes}
    failure = _reference(spec, ckpt, refdirs, placements, opts, threads, progress)
    if failure:
        return {**entry, "status": "failed", "reason": failure}, [], 0
    progress(spec.id, f"JAX checks ({', '.join(dtypes)}; {threads} thread(s))")
    run_spec = {"model": spec.id, "dtypes": dtypes, "checkpoint": str(ckpt.path),
                "backend": fp["backend"], "seed": opts.seed, "evidence": ckpt.evidence,
                "predicted": {v.dtype: v.jax.total for v in mplan.verdicts if v.fits},
                "reference_dirs": {d: str(p) for d, p in refdirs.items()}}
    done, data = _checks(run_spec, opts, threads)
    tests = data.get("tests", []) if data else []
    if done.timed_out or done.returncode not in (0, 1) or data is None:
        reason = cause(done, "running the JAX checks", opts.timeout)
        return {**entry, "status": "failed", "reason": reason}, tests, 0
    return entry, tests, data.get("summary", {}).get("deselected", 0)


def _reference(spec, ckpt, refdirs: dict, placements: dict, opts: Options, threads: int,
               progress) -> str | None:
    """Runs the reference for the dtypes not cached yet; the failure cause, or None. Each
    dtype's outputs are written under the cache's writer lock: a second run of the same model
    and dtype waits for this one instead of removing its half-written outputs."""
    if all((path / DONE).exists() for path in refdirs.values()):
        return None
    with contextlib.ExitStack() as locks:
        for path in sorted(refdirs.values()):  # one order for every run: no deadlock
            locks.enter_context(writer_lock(path, lambda stage: progress(spec.id, stage)))
        missing = [d for d, path in refdirs.items() if not (path / DONE).exists()]
        if not missing:  # another run computed them while this one waited
            return None
        where = ", ".join(f"{d} on {placements[d].describe()}" for d in missing)
        progress(spec.id, f"reference ({where}; {threads} thread(s))")
        try:
            args = _reference_args(spec, ckpt, {d: placements[d] for d in missing}, opts)
            done = run_child(args, env=child_env(threads),
                             cwd=registry.REPO_ROOT, timeout=opts.timeout,
                             show=lambda line: line.startswith("reference:"))
        finally:  # a reference killed while saving leaves its hidden staging folder
            for path in refdirs.values():
                discard_partials(path)
    if done.returncode == 0 and not done.timed_out:
        return None
    return cause(done, "running the transformers reference", opts.timeout)


def _checks(run_spec: dict, opts: Options, threads: int):
    """Runs the checks directory in a pytest process; (Finished, the JSON report or None)."""
    with tempfile.TemporaryDirectory(prefix="gemma3-harness-") as tmp:
        spec_file, report = Path(tmp) / "run.json", Path(tmp) / "report.json"
        spec_file.write_text(json.dumps(run_spec))
        env = child_env(threads)
        env["HARNESS_RUN"] = str(spec_file)
        done = run_child(_pytest_args(report), env=env, cwd=registry.REPO_ROOT,
                         timeout=opts.timeout, show=_is_verdict)
        data = json.loads(report.read_text()) if report.exists() else None
    return done, data


def _need(verdict) -> str:
    state = "fits" if verdict.fits else "refused"
    return (f"{verdict.dtype} needs {planner.gib(verdict.predicted)} of "
            f"{planner.gib(verdict.available)}, {state}")


def _reference_args(spec, ckpt, placements: dict, opts) -> list[str]:
    args = [sys.executable, "-m", "harness.reference", "--model", spec.id,
            "--checkpoint", str(ckpt.path), "--source", ckpt.key,
            "--dtypes", ",".join(placements), "--seed", str(opts.seed),
            "--placements", json.dumps({d: p.to_json() for d, p in placements.items()})]
    return args + (["--cache", str(opts.cache)] if opts.cache else [])


def _pytest_args(report: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", CHECKS_DIR, "-v", "-p", "no:cacheprovider",
            "--json-report", f"--json-report-file={report}", "--json-report-omit", *JSON_OMIT]


def _is_verdict(line: str) -> bool:
    return "::" in line and any(word in line for word in VERDICT_WORDS)
