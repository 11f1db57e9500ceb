"""The runner's per-model outcomes: refused by the planner, or failed with the cause when a
model process dies; and the result file still validates."""

import json
from pathlib import Path

import pytest

from harness.checkpoints import registry
from harness.checkpoints import resolve as checkpoints
from harness.memory import placement
from harness.run import runner
from harness.run.results import ResultFile
from harness.system.processes import Finished
from tests.harness.run.test_results import provenance, validate

GiB = 2**30
HOST = placement.Placement(placement.HOST, {}, 64 * GiB)


def machine(free_gib: float) -> dict:
    return {"backend": "cpu", "available_bytes": int(free_gib * GiB),
            "reference": {"gpu_free_bytes": [], "host_bytes": int(free_gib * GiB)}}


def options(tmp_path, **kw) -> runner.Options:
    return runner.Options(models=[], dtypes=["float32", "bfloat16"], checkpoint=None,
                          backend=None, seed=0, results=tmp_path, timeout=60.0,
                          cache=str(tmp_path), threads=1, command="python -m harness", **kw)


@pytest.fixture
def no_writes(monkeypatch, tmp_path):
    fake = checkpoints.Checkpoint(Path(tmp_path), "synthetic:0", "synthetic:x:0:w0")
    monkeypatch.setattr(checkpoints, "resolve", lambda *a, **k: fake)


def test_a_model_too_large_is_refused_without_writing_weights(tmp_path):
    entry, tests, _ = runner.run_model(registry.get("gemma-3-27b-it"), options(tmp_path),
                                       machine(20), lambda *a: None)
    assert entry["status"] == "not_supported" and tests == [] and entry["dtypes"] == []
    assert entry["reason"].startswith("needs ") and "> has 20.0 GiB" in entry["reason"]
    assert not (tmp_path / "checkpoints").exists()


def test_a_reference_killed_by_the_oom_killer_fails_the_model(monkeypatch, tmp_path, no_writes):
    monkeypatch.setattr(runner, "run_child", lambda *a, **k: Finished(-9, False, 1.0, []))
    entry, tests, _ = runner.run_model(registry.get("gemma-3-270m"), options(tmp_path),
                                       machine(20), lambda *a: None)
    assert entry["status"] == "failed" and tests == []
    assert entry["reason"] == ("oom: process killed (exit -9) while running the transformers "
                               "reference")


def test_the_reference_is_sent_where_the_planner_placed_it(monkeypatch, tmp_path, no_writes):
    """Four A100 40 GB: the 12b's bf16 reference fits one GPU, its float32 one only spread; the
    reference process is told so per dtype and the result entry records it."""
    sent = []
    monkeypatch.setattr(runner, "run_child", lambda args, **k: sent.append(args) or Finished(
        0, False, 1.0, []))
    monkeypatch.setattr(runner, "_checks", lambda *a: (Finished(0, False, 1.0, []),
                                                       {"tests": [], "summary": {}}))
    fp = {"backend": "gpu", "device_count": 4, "available_bytes": 30 * GiB,
          "reference": {"gpu_free_bytes": [int(39.4 * GiB)] * 4, "host_bytes": 16 * GiB}}
    entry, _, _ = runner.run_model(registry.get("gemma-3-12b-it"), options(tmp_path), fp,
                                   lambda *a: None)
    assert entry["reference_placement"] == {"float32": "cuda:0-3 (4 GPUs)",
                                            "bfloat16": "cuda:0"}
    placements = json.loads(sent[0][sent[0].index("--placements") + 1])
    assert placements["float32"]["kind"] == "gpus" and placements["bfloat16"]["kind"] == "gpu"
    assert sorted(placements["float32"]["max_memory"]) == ["0", "1", "2", "3"]


def test_checks_that_time_out_fail_the_model(monkeypatch, tmp_path, no_writes):
    monkeypatch.setattr(runner, "_reference", lambda *a: None)
    monkeypatch.setattr(runner, "_checks",
                        lambda *a: (Finished(-9, True, 60.0, ["...test_generate"]), None))
    entry, _, _ = runner.run_model(registry.get("gemma-3-1b-it"), options(tmp_path),
                                   machine(20), lambda *a: None)
    assert entry["reason"] == "timeout: running the JAX checks ran past 60 s"
    out = ResultFile(tmp_path / "results", provenance())
    out.add_model("gemma-3-1b-it", entry, [])
    assert validate(out.write())[1] == []


def test_a_second_run_waits_for_the_reference_another_run_is_writing(monkeypatch, tmp_path):
    """Two runs of one model and dtype: the second waits on the reference's writer lock and
    neither runs the reference twice nor removes the other's half-written outputs."""
    import subprocess
    import sys
    import threading
    import time

    refdir = tmp_path / "reference" / "gemma-3-270m-bfloat16-0123456789abcdef"
    refdir.parent.mkdir(parents=True)
    staging = refdir.parent / f".{refdir.name}-live"
    # Another run: holds the lock, is writing its staging folder, finishes after a moment.
    other = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from harness.system.cache import writer_lock\n"
        f"final = Path({str(refdir)!r})\n"
        "with writer_lock(final):\n"
        f"    Path({str(staging)!r}).mkdir(); print('holding', flush=True); time.sleep(2)\n"
        "    final.mkdir(); (final / 'meta.json').write_text('{}')\n")],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[3])
    assert other.stdout.readline().strip() == "holding"
    children, said = [], []
    monkeypatch.setattr(runner, "run_child", lambda *a, **k: children.append(a))
    spec = registry.get("gemma-3-270m")
    fake = checkpoints.Checkpoint(tmp_path, "synthetic:0", "synthetic:x:0:w0")
    found: list = []
    worker = threading.Thread(target=lambda: found.append(runner._reference(
        spec, fake, {"bfloat16": refdir}, {"bfloat16": HOST}, options(tmp_path), 1,
        lambda model, stage: said.append(stage))))
    worker.start()
    time.sleep(1.0)
    assert worker.is_alive() and staging.is_dir()  # waiting, and the other's work untouched
    worker.join(timeout=30)
    other.wait(timeout=30)
    assert found == [None] and children == []  # computed by the other run: nothing re-run
    assert said == [f"waiting for another run that is writing {refdir.name}"]
