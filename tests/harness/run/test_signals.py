"""SIGTERM and SIGINT to `python -m harness`: the model's processes are stopped, partial
checkpoints and temporary folders removed, the finished models' results kept, and the exit
code is 128 + the signal (143, 130) with one line. A partial checkpoint that a killed earlier
run left behind is removed by the next run, and a live writer is waited for, not disturbed."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness.checkpoints import registry, synthetic
from harness.checkpoints.registry import REPO_ROOT
from harness.memory import placement
from harness.run import runner
from harness.system.processes import Finished, Interrupted, deferred_signals, stop_on_signals
from tests.harness.run.test_runner import options

MODELS = "gemma-3-270m,gemma-3-270m-it"


def start(tmp_path: Path, hang: str, at: int = 2) -> subprocess.Popen:
    """tests/support/harness_signal_driver.py: model `at` (1 or 2) hangs at `hang`, the others finish."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "DRIVER_DIR": str(tmp_path), "DRIVER_HANG": hang,
           "DRIVER_HANG_AT": str(at), "TMPDIR": str(tmp_path / "tmp")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.harness_signal_driver", "--models", MODELS,
         "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
         "--threads", "1", "--dtypes", "bfloat16"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "ready").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the driver did not reach {hang}: {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)
    return proc


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def hidden(directory: Path) -> list[str]:
    """Staging folders (`.<name>-*`) left in a cache folder."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize(("sig", "hang"), [
    (signal.SIGTERM, "checks"), (signal.SIGTERM, "checkpoint"), (signal.SIGINT, "reference"),
], ids=["sigterm-checks", "sigterm-checkpoint", "sigint-reference"])
def test_a_signal_stops_the_run_cleanly_and_keeps_finished_results(tmp_path, sig, hang):
    proc = start(tmp_path, hang)
    pids = [int(p) for p in (tmp_path / "pids").read_text().split()] if hang != "checkpoint" \
        else []
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"python -m harness: stopped by {sig.name} during gemma-3-270m-it: "
                           "its processes were killed and its partial files removed; "
                           "1 finished model(s) kept in "), err[-2000:]
    assert "Traceback" not in err
    assert pids == [] or not any(alive(pid) for pid in pids)  # the child and its grandchild
    assert list((tmp_path / "tmp").iterdir()) == []  # no gemma3-harness-* run folder
    cache = tmp_path / "cache"
    assert hidden(cache / "checkpoints") == [] and hidden(cache / "reference") == []
    complete = {p.name for p in (cache / "checkpoints").iterdir()}
    assert complete == {"gemma-3-270m-seed0-w3"} | (
        {"gemma-3-270m-it-seed0-w3"} if hang != "checkpoint" else set())
    result, = (tmp_path / "results").iterdir()
    assert list(json.loads(result.read_text())["provenance"]["models"]) == ["gemma-3-270m"]


def test_a_stop_during_the_first_model_writes_no_result_file(tmp_path):
    proc = start(tmp_path, "checks", at=1)
    child, grandchild = (int(p) for p in (tmp_path / "pids").read_text().split())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines()[-1] == (
        "python -m harness: stopped by SIGTERM during gemma-3-270m: its processes were killed "
        "and its partial files removed; no model had finished, no result file written")
    assert not alive(child) and not alive(grandchild)
    assert not (tmp_path / "results").exists() or list((tmp_path / "results").iterdir()) == []


def test_a_stop_waits_for_the_end_of_a_deferred_block():
    steps, before = [], signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as stop, stop_on_signals():
        with deferred_signals():  # as around the result file's rewrite
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            steps.append("file written")
        steps.append("after the block")  # never reached: the stop comes first
    assert steps == ["file written"] and stop.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are restored


def test_a_partial_checkpoint_of_a_killed_run_is_removed_by_the_next(tmp_path, monkeypatch):
    spec = registry.get("gemma-3-270m")
    final = synthetic.checkpoint_dir(spec, 5, tmp_path)
    stale = final.parent / f".{final.name}-partial-k1ll3d"  # what SIGKILL mid-write leaves
    stale.mkdir(parents=True)
    (stale / "model.safetensors").write_bytes(b"half")
    older = final.parent / f".{final.name}-ab12cd"  # the staging name before this change
    older.mkdir()
    other = final.parent / ".gemma-3-270m-it-seed5-w3-partial-x"  # another model's: kept
    other.mkdir()
    monkeypatch.setattr(synthetic, "write_checkpoint",
                        lambda spec, d, seed, progress=None: (d / "model.safetensors")
                        .write_bytes(b"whole"))
    assert synthetic.ensure_checkpoint(spec, 5, tmp_path) == final
    assert not stale.exists() and not older.exists() and other.exists()
    assert (final / "model.safetensors").read_bytes() == b"whole" and (final / synthetic.DONE)


def test_a_run_waits_for_a_live_writer_and_uses_its_checkpoint(tmp_path, monkeypatch):
    spec = registry.get("gemma-3-270m")
    final = synthetic.checkpoint_dir(spec, 6, tmp_path)
    (tmp_path / "locks").mkdir()
    writes, said = [], []
    monkeypatch.setattr(synthetic, "write_checkpoint",
                        lambda *a, **k: writes.append(a))
    with open(tmp_path / "locks" / f"{final.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other run, writing
        live = final.parent / f".{final.name}-partial-live"
        live.mkdir(parents=True)
        waiter = threading.Thread(target=synthetic.ensure_checkpoint,
                                  args=(spec, 6, tmp_path, said.append))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive() and live.exists()  # waiting, its staging untouched
        live.rename(final)  # the other run finishes
        (final / synthetic.DONE).write_text("")
    waiter.join(timeout=10)
    assert not waiter.is_alive() and writes == []
    assert said == [f"waiting for another run that is writing {final.name}"]


def test_a_reference_killed_while_saving_leaves_no_staging(tmp_path, monkeypatch):
    spec = registry.get("gemma-3-270m")
    ckpt = runner.checkpoints.Checkpoint(tmp_path, "synthetic:0", "synthetic:x:0:w0")
    refdir = tmp_path / "reference" / "gemma-3-270m-bfloat16-0123456789abcdef"

    def killed_while_saving(*args, **kwargs):
        (refdir.parent / f".{refdir.name}-x1y2z3").mkdir(parents=True)
        return Finished(-9, False, 1.0, [])

    monkeypatch.setattr(runner, "run_child", killed_while_saving)
    host = placement.Placement(placement.HOST, {}, 64 * 2**30)
    failure = runner._reference(spec, ckpt, {"bfloat16": refdir}, {"bfloat16": host},
                                options(tmp_path), 1, lambda *a: None)
    assert failure.startswith("oom: process killed")
    assert list(refdir.parent.iterdir()) == []


def test_ctrl_c_while_the_harness_is_still_importing(tmp_path):
    """SIGINT 0.05 s after `python -m harness` starts, while it imports jax and the runner:
    the one line of a run stopped before any model ran, status 130, no traceback."""
    from tests.support.early_signal import interrupt_during_import

    command = ["-m", "harness", "--models", "gemma-3-270m", "--results", str(tmp_path / "r"),
               "--cache", str(tmp_path / "c")]
    stopped, tries = interrupt_during_import(command, first_module="harness")
    assert (stopped.status, stopped.lines) == (130, [
        "python -m harness: stopped by SIGINT before any model ran; nothing written"]), (
        f"after {tries} tries: {stopped}")
    assert not (tmp_path / "r").exists()
