"""`python -m harness` refuses a misconfigured run before it spends time: bad option values,
folders it cannot write, another model's checkpoint, a hub id it cannot reach. Each is one
line naming the option and what is wrong, exit 2, and nothing written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gemma3.config import Gemma3Config
from harness.checkpoints import registry
from harness.checkpoints.registry import REPO_ROOT
from harness.checkpoints.synthetic import hub_config
from harness.run import preflight
from harness.run.cli import main, parse

HUB_CONFIGS = REPO_ROOT / "harness" / "data" / "hub-configs"


def refused(argv: list[str], capsys) -> str:
    """The one stderr line of a usage refusal (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["--timeout", "0"], "argument --timeout: '0' must be a positive number"),
    (["--timeout", "-5"], "argument --timeout: '-5' must be a positive number"),
    (["--timeout", "nan"], "argument --timeout: 'nan' must be a positive number"),
    (["--timeout", "inf"], "argument --timeout: 'inf' must be a positive number"),
    (["--threads", "0"], "argument --threads: '0' must be a positive number"),
    (["--threads", "two"], "argument --threads: invalid int value: 'two'"),
    (["--seed", "-1"], "--seed -1: must be >= 0 and at most 2**63 - 1"),
    (["--seed", str(2**64)], f"--seed {2**64}: must be >= 0"),
    (["--models", ","], "--models ',' names no model id"),
    (["--models", ""], "--models is empty; leave it out for the default"),
    (["--models", "gemma-3-2b"], "unknown model id 'gemma-3-2b'"),
    (["--dtypes", ""], "--dtypes '': expected a comma-separated subset of float32, bfloat16"),
    (["--dtypes", "float32,float32"], "--dtypes 'float32,float32' names a dtype twice"),
    (["--checkpoint", "", "--models", "gemma-3-270m"], "--checkpoint is empty"),
    (["--cache", " "], "--cache is empty"),
    (["--results", ""], "--results is empty"),
    (["--backend", "npu"], "argument --backend: invalid choice: 'npu'"),
])
def test_bad_option_values_are_one_line_usage_errors(argv, message, capsys):
    line = refused(argv, capsys)
    assert line.startswith("python -m harness: error: ") and message in line
    assert line.endswith("(see python -m harness --help)")


def test_a_results_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "r").write_text("")
    with pytest.raises(preflight.Refused, match=r"^--results .*/r: is a file, not a folder"):
        preflight.check_writable("--results", tmp_path / "r")


def test_a_cache_path_inside_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(preflight.Refused, match=r"^--cache .*/f/sub/dir: is inside .*/f, which "
                                                r"is a file, not a folder"):
        preflight.check_writable("--cache", tmp_path / "f" / "sub" / "dir")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /sys, Linux only")
def test_a_folder_that_cannot_be_written_is_refused():
    # /sys takes no new folders, not even from root (a chmod'ed folder would not stop root).
    with pytest.raises(preflight.Refused, match=r"^--results /sys/gemma3-results: cannot write "
                                                r"there \(in /sys, to create it\): "):
        preflight.check_writable("--results", Path("/sys/gemma3-results"))


def test_a_folder_to_be_created_is_accepted_and_not_created(tmp_path):
    preflight.check_writable("--results", tmp_path / "new" / "results")
    assert list(tmp_path.iterdir()) == []  # the probe cleaned up after itself


def checkpoint_dir(tmp_path: Path, size: str) -> Path:
    directory = tmp_path / f"ckpt-{size}"
    directory.mkdir()
    (directory / "config.json").write_text((HUB_CONFIGS / f"gemma-3-{size}.json").read_text())
    return directory


def test_another_models_checkpoint_is_refused_with_the_first_differing_fields(tmp_path, capsys):
    directory = checkpoint_dir(tmp_path, "1b")
    results = tmp_path / "results"
    assert main(["--models", "gemma-3-270m", "--checkpoint", str(directory),
                 "--results", str(results), "--cache", str(tmp_path / "cache")]) == 2
    line, = capsys.readouterr().err.splitlines()
    assert line == (f"python -m harness: error: --checkpoint {directory}/config.json is not "
                    "gemma-3-270m: hidden_size 1152 (expected 640), intermediate_size 6912 "
                    "(expected 2048), num_hidden_layers 26 (expected 18); these weights are "
                    "gemma-3-1b-pt or gemma-3-1b-it: pass --models gemma-3-1b-pt")
    assert not results.exists() and not (tmp_path / "cache").exists()


def test_a_text_only_checkpoint_for_a_multimodal_id_names_the_vision_tower(tmp_path):
    found = Gemma3Config.from_hf_config(json.loads((HUB_CONFIGS / "gemma-3-4b.json").read_text())["text_config"]
                           | {"model_type": "gemma3_text"})
    with pytest.raises(preflight.Refused) as refusal:
        preflight.check_config_matches(registry.get("gemma-3-4b-it"), found, "x/config.json")
    assert "is not gemma-3-4b-it: no vision tower (expected one)" in str(refusal.value)


def test_more_than_three_differences_are_counted():
    found = registry.get("gemma-3-27b-it").config()
    differences = preflight.architecture_differences(registry.get("gemma-3-4b-it").config(), found)
    with pytest.raises(preflight.Refused, match=r"num_hidden_layers 62 \(expected 34\) and 3 more; "
                                                r"these weights are gemma-3-27b-pt or "):
        preflight.check_config_matches(registry.get("gemma-3-4b-it"), found, "x")
    assert len(differences) == 6


@pytest.mark.parametrize("spec", registry.MODELS, ids=lambda spec: spec.id)
def test_each_models_own_hub_config_is_accepted(spec):
    preflight.check_config_matches(spec, Gemma3Config.from_hf_config(hub_config(spec)), "config.json")


def test_a_checkpoint_directory_without_config_is_refused(tmp_path):
    with pytest.raises(preflight.Refused, match=r"^--checkpoint .*: no config.json in "):
        preflight.checkpoint_config(str(tmp_path))


def test_a_checkpoint_that_is_neither_path_nor_hub_id_is_refused(tmp_path):
    with pytest.raises(preflight.Refused, match="no such directory or file, and not a hub id"):
        preflight.checkpoint_config(str(tmp_path / "typo"))


def run_offline_on_the_hub_id(tmp_path) -> subprocess.CompletedProcess:
    """python -m harness --checkpoint google/gemma-3-270m with no network and the hub cache
    under tmp_path/hf."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run(
        [sys.executable, "-m", "harness", "--models", "gemma-3-270m", "--checkpoint",
         "google/gemma-3-270m", "--results", str(tmp_path / "results"), "--cache",
         str(tmp_path / "cache")], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False)


def test_an_offline_hub_id_without_a_cached_snapshot_is_refused(tmp_path):
    done = run_offline_on_the_hub_id(tmp_path)
    assert done.returncode == 2
    line, = done.stderr.splitlines()
    assert line.startswith(f"python -m harness: error: --checkpoint google/gemma-3-270m: the "
                           f"local hub cache ({tmp_path}/hf/hub) has no complete snapshot, and "
                           "fetching it failed (")
    assert "pass a local checkpoint directory" in line
    assert not (tmp_path / "results").exists()


def test_a_cached_hub_snapshot_is_checked_offline(tmp_path):
    # The hub cache layout huggingface_hub reads: refs/main -> snapshots/<revision>/.
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "hub" / "models--google--gemma-3-270m"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    (snapshot / "config.json").write_text((HUB_CONFIGS / "gemma-3-1b.json").read_text())
    (snapshot / "model.safetensors").write_bytes(b"")  # the weights are there: no fetch
    done = run_offline_on_the_hub_id(tmp_path)
    assert done.returncode == 2, done.stderr
    line, = done.stderr.splitlines()
    assert line == (
        f"python -m harness: error: --checkpoint {snapshot}/config.json is not gemma-3-270m: "
        "hidden_size 1152 (expected 640), intermediate_size 6912 (expected 2048), "
        "num_hidden_layers 26 (expected 18); these weights are gemma-3-1b-pt or gemma-3-1b-it: "
        "pass --models gemma-3-1b-pt")
    assert not (tmp_path / "results").exists()


def test_a_refused_hub_model_is_described_from_its_snapshot(monkeypatch, tmp_path):
    from harness.checkpoints import resolve as checkpoints

    snapshot = tmp_path / "snapshots" / ("ab" * 20)
    monkeypatch.setattr(checkpoints, "hub_config_dir", lambda repo: snapshot)
    assert checkpoints.describe(registry.get("gemma-3-27b-it"), "google/gemma-3-27b-it", 0).source == (
        f"hub:google/gemma-3-27b-it@{'ab' * 20}")
