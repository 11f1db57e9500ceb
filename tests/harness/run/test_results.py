"""The result writer: files that pass the reporter's validation (schema and rules), private
data scrubbed, the code hash equal to the reporter's, atomic rewrites after each model."""

import json
from pathlib import Path

import pytest

from contract.bounds import check_bounds
from contract.registry import load_registry
from harness.checkpoints.registry import REPO_ROOT
from harness.run import results
from harness.system import fingerprint
from matrix.pipeline import load_valid

HOME = str(Path.home())


def provenance() -> dict:
    found = fingerprint.devices()
    return {"project": results.project(REPO_ROOT), "versions": fingerprint.versions(),
            "backend": found["backend"], "device_kind": found["device_kind"],
            "device_count": found["device_count"],
            "memory_per_device_bytes": found["memory_per_device_bytes"],
            "host": fingerprint.host(), "utc_time": "2026-11-27T23:15:00Z",
            "command": f"python -m harness --cache {HOME}/.cache/x"}


def a_test(check: str, model: str, dtype: str, outcome: str = "passed", **measurements):
    node = f"harness/checks/test_{check}.py::test_{check}[{model}-{dtype}]"
    test = {"nodeid": node, "lineno": 3, "outcome": outcome, "keywords": [node],
            "setup": {"duration": 0.1, "outcome": "passed"},
            "call": {"duration": 1.0, "outcome": outcome, "crash": {"path": HOME},
                     "traceback": [{"path": "x"}], "stdout": "noise"},
            "metadata": {"model": model, "dtype": dtype, "check": check,
                         "measurements": measurements,
                         "bounds": [b.as_record() for b in check_bounds(check, dtype, "cpu")]}}
    if outcome == "failed":
        test["call"]["longrepr"] = f"{HOME}/venv/x.py: token hf_{'a' * 30} leaked"
    return test


def validate(path: Path):
    return load_valid([(path, str(path))], load_registry())


@pytest.fixture
def written(tmp_path):
    out = results.ResultFile(tmp_path, provenance())
    out.add_model("gemma-3-270m", results.model_entry("synthetic:0", "ran", None, 3 * 2**30,
                                                      20 * 2**30, ["float32", "bfloat16"]),
                  [a_test("load", "gemma-3-270m", "bfloat16", load_seconds=1.5,
                          parameter_mismatch=0),
                   a_test("logits", "gemma-3-270m", "float32", "failed", max_abs_diff=0.5)])
    out.add_model("gemma-3-27b-it", results.model_entry(
        "synthetic:0", "not_supported", "needs 63.8 GiB > has 19.0 GiB", 68 * 2**30, 19 * 2**30,
        []), [])
    out.add_model("gemma-3-1b-it", results.model_entry(
        "synthetic:0", "failed", "oom: process killed (exit -9) while running the JAX checks",
        5 * 2**30, 19 * 2**30, ["bfloat16"]), [])
    return out, out.write()


def test_written_file_passes_the_reporters_validation(written):
    _, path = written
    assert path.name == "20261127T231500Z-cpu-cpu-1x.json"
    valid, problems = validate(path)
    assert problems == [] and len(valid) == 1


def test_summary_counts_the_tests_and_exitcode_says_failure(written):
    data = json.loads(written[1].read_text())
    assert data["summary"] == {"collected": 2, "total": 2, "passed": 1, "failed": 1}
    assert data["exitcode"] == 1 and data["root"] == "."


def test_no_home_path_or_token_and_no_extra_keys(written):
    text = written[1].read_text()
    assert HOME + "/" not in text and "hf_aaaa" not in text and "[redacted]" in text
    data = json.loads(text)
    assert data["provenance"]["command"] == "python -m harness --cache ~/.cache/x"
    assert set(data["tests"][0]["call"]) == {"duration", "outcome"}  # crash, streams dropped
    assert "environment" not in data


def test_rewrites_are_atomic_and_keep_earlier_models(written):
    out, path = written
    out.add_model("gemma-3-1b-pt", results.model_entry("synthetic:0", "ran", None, 1, 1,
                                                       ["bfloat16"]),
                  [a_test("load", "gemma-3-1b-pt", "bfloat16", parameter_mismatch=0)])
    assert out.write() == path
    data = json.loads(path.read_text())
    assert len(data["provenance"]["models"]) == 4 and data["summary"]["total"] == 3
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert validate(path)[1] == []


def test_the_validator_catches_a_mismatch_we_would_make(tmp_path):
    out = results.ResultFile(tmp_path, provenance())
    out.add_model("gemma-3-270m", results.model_entry("synthetic:0", "ran", None, 1, 1,
                                                      ["float32"]),
                  [a_test("load", "gemma-3-270m", "bfloat16")])  # dtype not in the entry
    assert validate(out.write())[1]


def test_file_name_slug():
    prov = {"utc_time": "2026-11-20T15:00:00.123Z", "backend": "gpu",
            "device_kind": "NVIDIA H100 80GB HBM3", "device_count": 8}
    assert results.file_name(prov) == "20261120T150000Z-gpu-nvidia-h100-80gb-hbm3-8x.json"


def test_a_quantized_run_is_written_as_real_quantized_v2_evidence(tmp_path):
    digest = "ab" * 32
    mix = {"format": "gguf", "file_sha256": digest, "tensor_types": {"F32": 3, "Q4_K": 2}}
    out = results.ResultFile(tmp_path, provenance())
    out.add_model("gemma-3-270m", results.model_entry(f"gguf:{digest}", "ran", None, 1, 1,
                                                      ["bfloat16"], mix),
                  [a_test("realtext", "gemma-3-270m", "bfloat16", perplexity=9.5,
                              perplexity_rel_diff=1e-3, confident_divergences=0)])
    path = out.write()
    data = json.loads(path.read_text())
    entry = data["provenance"]["models"]["gemma-3-270m"]
    assert data["provenance"]["schema_version"] == 3
    assert entry["evidence"] == "real_quantized" and entry["quantization"] == mix
    assert validate(path)[1] == []


def test_plain_sources_carry_their_evidence_kind():
    kinds = {source: results.model_entry(source, "ran", None, 1, 1, [])["evidence"]
             for source in ("synthetic:0", "local:" + "0" * 64, "hub:google/x@" + "0" * 40)}
    assert kinds == {"synthetic:0": "synthetic", "local:" + "0" * 64: "real",
                     "hub:google/x@" + "0" * 40: "real"}
