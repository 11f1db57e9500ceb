"""`python -m matrix validate` and the package's standalone import rule."""

import json
import shutil
import subprocess
import sys

import pytest

from matrix.__main__ import main
from tests.support import DATA, REPO_ROOT

RESULTS = DATA / "results"
ROOT = REPO_ROOT


def test_validate_valid_files(capsys):
    files = sorted(str(p) for p in (RESULTS / "valid").glob("*.json"))
    assert main(["validate", *files]) == 0
    assert capsys.readouterr().out == "9 of 9 result files valid\n"


def test_validate_reports_every_problem_with_file_and_path(tmp_path, capsys):
    data = json.loads((RESULTS / "valid" / "20261101T100000Z-cpu-cpu-1x.json").read_text())
    data["provenance"]["device_count"] = -1
    data["provenance"]["host"]["cores"] = 0
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps(data))
    good = RESULTS / "valid" / "20261125T100000Z-gpu-nvidia-h200-1x.json"
    assert main(["validate", str(bad), str(good)]) == 1
    out = capsys.readouterr()
    assert out.err.splitlines() == [
        f"{bad}: $.provenance.device_count: -1 is less than the minimum of 1",
        f"{bad}: $.provenance.host.cores: 0 is less than the minimum of 1",
    ]
    assert out.out == "1 of 2 result files valid\n"


def test_validate_without_files_reads_the_results_dir(tmp_path, capsys):
    shutil.copytree(RESULTS / "invalid", tmp_path / "results")
    assert main(["validate", "--results", str(tmp_path / "results")]) == 1
    assert "0 of 3 result files valid" in capsys.readouterr().out


def test_validate_an_empty_results_dir(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    assert main(["validate", "--results", str(tmp_path / "results")]) == 0
    assert "no result files" in capsys.readouterr().out


def test_validate_a_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.json")]) == 1
    assert "nope.json: $: file cannot be read" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["publish"])
    assert exit_info.value.code == 2


def test_runs_as_a_module_without_jax_or_the_other_packages():
    script = (
        "import sys, runpy; sys.argv = ['matrix', '--help']\n"
        "try:\n    runpy.run_module('matrix', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "import matrix.pipeline\n"
        "bad = {'jax', 'flax', 'torch', 'gemma3', 'harness'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "validate" in done.stdout and "render" in done.stdout and "check" in done.stdout
