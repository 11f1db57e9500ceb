"""`python -m harness`: option checking, the loud backend failure, and the checks directory
refusing to run outside the harness."""

import os
import subprocess
import sys

import pytest

from harness.checkpoints.registry import REPO_ROOT
from harness.run.cli import parse


def test_defaults_run_every_model_smallest_first_in_both_dtypes():
    opts = parse([])
    assert opts.models[0].id == "gemma-3-270m" and opts.models[-1].id == "gemma-3-27b-it"
    assert opts.dtypes == ["float32", "bfloat16"] and opts.checkpoint is None


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "google/gemma-3-1b-it"], "exactly one --models"),
    (["--dtypes", "float16"], "--dtypes"),
    (["--models", "gemma-3-2b"], "unknown model id"),
])
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse(argv)
    assert message in capsys.readouterr().err


def test_the_command_is_recorded_without_the_home_directory():
    home = os.path.expanduser("~")
    assert parse(["--cache", f"{home}/c"]).command == "python -m harness --cache ~/c"


def test_a_gpu_run_on_a_cpu_machine_fails_before_writing_anything(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness", "--backend", "gpu", "--models",
                           "gemma-3-270m", "--results", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "--backend gpu was asked for" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_checks_outside_the_harness_are_skipped_with_a_reason():
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_RUN"}
    done = subprocess.run([sys.executable, "-m", "pytest", "harness/checks", "-q", "-rs",
                           "-p", "no:cacheprovider"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "9 skipped" in done.stdout.splitlines()[-1]
    assert "harness checks need HARNESS_RUN; run `python -m harness`" in done.stdout
