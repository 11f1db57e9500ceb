"""`python -m matrix diff`: the cells the added result files change, before -> after, with the
deciding evidence; a flip, a new column and unchanged cells on fixture results."""

import json
import shutil

from contract.code_hash import code_sha256
from contract.registry import load_registry
from contract.results import file_name
from matrix.__main__ import main
from matrix.pipeline import build_cells, load_valid
from tests.support import DATA

VALID = DATA / "results" / "valid"
H100 = VALID / "20261120T150000Z-gpu-nvidia-h100-80gb-hbm3-1x.json"
H200 = VALID / "20261125T100000Z-gpu-nvidia-h200-1x.json"
REGISTRY = load_registry()
SOURCE = '"""Stand-in for the model sources: the matrix tests hash this file."""\n'


def checkout(tmp_path, *files):
    (tmp_path / "gemma3" / "nn").mkdir(parents=True)
    (tmp_path / "gemma3" / "nn" / "__init__.py").write_text(SOURCE)
    results = tmp_path / "results"
    results.mkdir()
    for path in files:
        shutil.copy(path, results / path.name)
    return results


def fixed_rerun(results):
    """A day later, the same H100 run with its failing batch check passing."""
    data = json.loads(H100.read_text("utf-8"))
    data["provenance"]["utc_time"] = "2026-11-21T15:00:00Z"
    test = next(t for t in data["tests"] if t["outcome"] == "failed")
    test["outcome"] = test["call"]["outcome"] = "passed"
    test["call"].pop("longrepr", None)
    data["summary"].update(passed=data["summary"]["passed"] + 1, failed=0)
    data["summary"].pop("failed")
    data["exitcode"] = 0
    path = results / file_name(data["provenance"])
    path.write_text(json.dumps(data), "utf-8")
    return path


def run_diff(tmp_path, results, added, capsys):
    code = main(["diff", "--results", str(results), "--root", str(tmp_path), "--base", "main",
                 "--added", *map(str, added)])
    out = capsys.readouterr().out
    return code, out


def test_a_flip_a_new_column_and_the_unchanged_cells(tmp_path, capsys):
    results = checkout(tmp_path, H100, H200)
    rerun = fixed_rerun(results)
    code, out = run_diff(tmp_path, results, [rerun, results / H200.name], capsys)
    assert code == 0
    assert out.startswith("### What the 2 result file(s) added since main change\n")
    rows = [line for line in out.splitlines() if line.startswith("| gemma")]
    assert ("| gemma-3-270m-it | GPU H100 (1x) | ❌ Fails (batch) 🧪 | ✅ Runs (1 of 2 ❌) 🧪 | "
            f"`{rerun.name}`; logits max abs diff ") in " ".join(rows)
    assert any(row.startswith("| gemma-3-12b-it | GPU H200 (1x) | (no column) | ✅ Runs 🧪 | "
                              f"`{H200.name}`") for row in rows)
    assert len(rows) == 2 and "cells with evidence unchanged." in out
    assert all(row.count("|") == 6 for row in rows)  # no stray pipe breaks the table


def test_nothing_added_says_so(tmp_path, capsys):
    results = checkout(tmp_path, H100)
    code, out = run_diff(tmp_path, results, [], capsys)
    assert code == 0 and out == "No result files were added since main: no cell changes.\n"


def test_cells_of_other_columns_are_unchanged(tmp_path, capsys):
    results = checkout(tmp_path, H100, H200)
    code, out = run_diff(tmp_path, results, [results / H200.name], capsys)
    rows = [line for line in out.splitlines() if line.startswith("| gemma")]
    assert code == 0 and rows and all("| GPU H200 (1x) | (no column) |" in row for row in rows)
    h100_cells, _ = build_cells(load_valid([(results / H100.name, H100.name)], REGISTRY)[0],
                                REGISTRY, code_sha256(tmp_path))
    assert out.endswith(f"\n{len(h100_cells)} cells with evidence unchanged.\n")
