"""The (8x) path through the whole harness: `python -m harness` on 8 emulated CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=8) runs a tiny gemma-3-270m through every
check on the sharded path, records that its devices were emulated, and the reporter refuses
the file, so it can neither fill the CPU column nor replace a real CPU result."""

import json
import os
import subprocess
import sys

import pytest

from contract.registry import load_registry
from contract.results import emulated_devices, file_name
from harness.checkpoints import synthetic
from harness.checkpoints.registry import REPO_ROOT
from matrix.pipeline import build_cells, load_valid

DEVICES = 8
TINY_DRIVER = REPO_ROOT / "tests" / "support" / "tiny_harness"
# gemma-3-270m's hub config shrunk; both layer types, a window the generate prompt crosses,
# hidden and MLP sizes that split over 8 devices. ~0.3 M parameters: the run takes ~30 s.
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 7,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "query_pre_attn_scalar": 16, "sliding_window": 32, "max_position_embeddings": 512,
        "vocab_size": 512,
        "layer_types": ["sliding_attention"] * 5 + ["full_attention", "sliding_attention"]}
CHECKS = {"load", "logits", "generate", "batch", "speed", "memory"}  # a text model's checks
NEEDS_TORCH = "python -m harness runs the transformers reference, which needs torch"


@pytest.fixture(scope="module")
def emulated_run(tmp_path_factory):
    pytest.importorskip("torch", reason=NEEDS_TORCH)
    tmp = tmp_path_factory.mktemp("emulated")
    config = tmp / "hub-configs" / "gemma-3-270m.json"
    config.parent.mkdir()
    hub = json.loads((synthetic.HUB_CONFIGS / "gemma-3-270m.json").read_text("utf-8"))
    config.write_text(json.dumps({**hub, **TINY}))
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={DEVICES}",
           "TINY_HARNESS_CONFIG": str(config),
           "PYTHONPATH": os.pathsep.join([str(TINY_DRIVER), str(REPO_ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "--models", "gemma-3-270m", "--dtypes", "bfloat16",
         "--results", str(tmp / "results"), "--cache", str(tmp / "cache"), "--threads", "2"],
        check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    files = sorted((tmp / "results").glob("*.json"))
    assert done.returncode == 0 and len(files) == 1, done.stderr[-4000:]
    return files[0]


def test_every_check_passes_on_the_sharded_path_over_8_devices(emulated_run):
    data = json.loads(emulated_run.read_text("utf-8"))
    tests = {t["metadata"]["check"]: t for t in data["tests"]}
    assert set(tests) == CHECKS
    assert all(t["outcome"] == "passed" for t in tests.values())
    load = tests["load"]["metadata"]["measurements"]
    assert load["weight_devices"] == DEVICES  # not the one-device path
    assert load["split_fraction"] > 0.5  # most weights split, not copied whole to each device


def test_the_result_says_its_devices_were_emulated(emulated_run):
    provenance = json.loads(emulated_run.read_text("utf-8"))["provenance"]
    assert provenance["device_count"] == DEVICES and provenance["emulated_devices"] is True
    assert emulated_run.name.endswith(f"-cpu-cpu-{DEVICES}x.json")


def test_the_reporter_refuses_it_and_only_for_the_emulation(emulated_run, tmp_path):
    valid, problems = load_valid([(emulated_run, emulated_run.name)], load_registry())
    assert valid == []
    assert [p.path for p in problems] == ["$.provenance.emulated_devices"]
    assert "were emulated" in problems[0].message and "results/" in problems[0].message
    # The same evidence claimed as one real CPU device would fill the CPU column, so the
    # refusal is what keeps it from standing for (or, being newer, replacing) real evidence.
    data = json.loads(emulated_run.read_text("utf-8"))
    data["provenance"].update(emulated_devices=False, device_count=1)
    claimed = tmp_path / file_name(data["provenance"])
    claimed.write_text(json.dumps(data))
    valid, problems = load_valid([(claimed, claimed.name)], load_registry())
    assert problems == [] and len(valid) == 1
    cells, columns = build_cells(valid, load_registry(), "0" * 64)
    assert columns == {"CPU"} and ("gemma-3-270m", "CPU") in cells


def test_an_older_file_without_the_field_is_judged_by_its_cpu_device_count(emulated_run,
                                                                            tmp_path):
    data = json.loads(emulated_run.read_text("utf-8"))
    del data["provenance"]["emulated_devices"]
    older = tmp_path / emulated_run.name
    older.write_text(json.dumps(data))
    valid, problems = load_valid([(older, older.name)], load_registry())
    assert valid == [] and [p.path for p in problems] == ["$.provenance.device_count"]


@pytest.mark.parametrize(("backend", "count", "emulated"), [
    ("cpu", 1, False), ("cpu", 8, True), ("gpu", 8, False), ("tpu", 4, False)])
def test_only_several_cpu_devices_count_as_emulated(backend, count, emulated):
    assert emulated_devices(backend, count) is emulated
