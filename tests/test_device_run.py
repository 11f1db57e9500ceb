"""`.device/run.py`, the prepared run for a lent offline GPU machine: its environment check
refuses a missing wheel with the list before any time is spent, models that cannot be
finished are left out as not run (never failed), and the time budget stops a child."""

import importlib.util
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from harness.checkpoints.registry import REPO_ROOT

SCRIPT = REPO_ROOT / ".device" / "run.py"


def load_script():
    spec = importlib.util.spec_from_file_location("device_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


device_run = load_script()
ROWS = device_run.manifest()


def start(out: Path, wheels: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(out), "--wheels", str(wheels)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_the_manifest_names_each_carried_wheel_once_with_its_module():
    names = [name for name, _ in ROWS]
    assert len(names) == len(set(names)) == 14
    assert {"pytest_jsonreport", "jsonschema", "nox", "rpds"} <= {m for _, m in ROWS}
    assert all(n.endswith(".whl") and ("py3-none-any" in n or "cp312" in n) for n in names)


def test_no_wheels_are_refused_with_the_whole_list(tmp_path):
    done = start(tmp_path / "out", tmp_path / "empty")
    assert done.returncode == 2
    assert f"{len(ROWS)} wheel(s) of .device/wheels.txt are not in" in done.stderr
    assert all(name in done.stderr for name, _ in ROWS)
    assert "python .device/run.py --download" in done.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_one_missing_wheel_is_named_alone(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, _ in ROWS[1:]:
        (wheels / name).write_bytes(b"")
    done = start(tmp_path / "out", wheels)
    assert done.returncode == 2 and "1 wheel(s)" in done.stderr and ROWS[0][0] in done.stderr
    assert not any(name in done.stderr for name, _ in ROWS[1:])


def test_a_bad_manifest_line_names_the_file_and_line(tmp_path):
    bad = tmp_path / "wheels.txt"
    bad.write_text("# comment\nnox-1.0-py3-none-any.whl\n")
    with pytest.raises(SystemExit, match=r"wheels.txt:2: expected `<file>.whl <module>`"):
        device_run.manifest(bad)


def test_models_beyond_the_free_disk_are_left_out_as_not_run(monkeypatch, tmp_path):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(device_run.shutil, "disk_usage", lambda _: usage(0, 0, 5 * 10**9))
    chosen, left = device_run.plan(["gemma-3-270m", "gemma-3-1b-pt", "gemma-3-4b-it"], tmp_path)
    # 270m (0.6 GB with the margin) and 1b (2.4 GB) fit 5 GB; the 4b (10.3 GB) does not.
    assert chosen == ["gemma-3-270m", "gemma-3-1b-pt"]
    assert left["gemma-3-4b-it"].startswith("not run: disk (its checkpoint needs 10.3 GB")


def test_the_time_budget_stops_a_child_and_says_so(tmp_path):
    log = device_run.Log(tmp_path / "log")
    began = time.monotonic()
    code, stopped = device_run.run_until(
        [sys.executable, "-c", "import time; print('working', flush=True); time.sleep(60)"],
        {}, time.monotonic() + 1.0, log)
    assert stopped and code != 0 and time.monotonic() - began < 30
    text = (tmp_path / "log").read_text()
    assert "working" in text and "time budget reached" in text
