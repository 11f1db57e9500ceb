"""Validation of result files: schema, numbers, fingerprints, node ids, leaks, malformed JSON."""

import copy
import json
from pathlib import Path

import pytest

from contract.registry import load_registry
from contract.results import file_name as expected_file_name
from matrix.pipeline import load_valid
from tests.support import DATA

RESULTS = DATA / "results"
CPU_FILE = RESULTS / "valid" / "20261101T100000Z-cpu-cpu-1x.json"
V2_FILE = RESULTS / "valid" / "20261126T100000Z-cpu-cpu-1x.json"  # real, quantized (GGUF)
REGISTRY = load_registry()


def base() -> dict:
    return json.loads(CPU_FILE.read_text(encoding="utf-8"))


def problems(tmp_path: Path, data=None, *, text: str | None = None, name: str | None = None):
    """Validate `data` (or raw `text`) written as `results/<name>`; the problems as strings."""
    if name is None:
        name = expected_file_name(data["provenance"]) if _named(data) else CPU_FILE.name
    path = tmp_path / "results" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text if text is not None else json.dumps(data), encoding="utf-8")
    results, found = load_valid([(path, f"results/{name}")], REGISTRY)
    assert bool(results) != bool(found)
    return [str(problem) for problem in found]


def _named(data) -> bool:
    try:
        expected_file_name(data["provenance"])
        return True
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


def only(found: list[str]) -> str:
    assert len(found) == 1, found
    return found[0]


def test_every_valid_fixture_validates():
    files = sorted((RESULTS / "valid").glob("*.json")) + sorted((RESULTS / "injection").glob("*"))
    results, found = load_valid([(p, p.name) for p in files], REGISTRY)
    assert found == [] and len(results) == len(files) == 10


def test_message_names_file_and_json_path(tmp_path):
    data = base()
    data["provenance"]["device_count"] = -1
    assert only(problems(tmp_path, data, name="x.json")) == (
        "results/x.json: $.provenance.device_count: -1 is less than the minimum of 1")


@pytest.mark.parametrize(("value", "message"), [
    (100000, "100000 is greater than the maximum of 4096"),
    (True, "True is not of type 'integer'"),
    (2.5, "2.5 is not of type 'integer'"),
    ("8", "'8' is not of type 'integer'"),
])
def test_device_count_type_and_range(tmp_path, value, message):
    data = base()
    data["provenance"]["device_count"] = value
    assert only(problems(tmp_path, data, name=CPU_FILE.name)).endswith(
        f"$.provenance.device_count: {message}")


def _speed_index(data, model="gemma-3-270m"):
    return next(i for i, t in enumerate(data["tests"])
                if t["nodeid"].endswith(f"test_speed[{model}-bfloat16]"))


@pytest.mark.parametrize(("value", "message"), [
    (-5.0, "-5.0 is less than the minimum of 0"),
    (False, "False is not of type 'number', 'null'"),
    (1e12, "1000000000000.0 is greater than the maximum of 1000000000"),
])
def test_measurements_are_checked_for_type_and_range(tmp_path, value, message):
    data = base()
    index = _speed_index(data)
    data["tests"][index]["metadata"]["measurements"]["decode_tokens_per_s"] = value
    assert only(problems(tmp_path, data)) == (
        f"results/{CPU_FILE.name}: $.tests[{index}].metadata.measurements"
        f".decode_tokens_per_s: {message}")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_rejected(tmp_path, literal):
    data = base()
    index = _speed_index(data)
    data["tests"][index]["metadata"]["measurements"]["decode_tokens_per_s"] = "@@"
    text = json.dumps(data).replace('"@@"', literal)
    assert only(problems(tmp_path, text=text, name=CPU_FILE.name)).endswith(
        f"$.tests[{index}].metadata.measurements.decode_tokens_per_s: {literal} is not a "
        "finite number (JSON has no NaN or Infinity); write null for a missing measurement")


def test_truncated_json_is_rejected_with_the_file(tmp_path):
    path = RESULTS / "invalid" / "20261121T080000Z-gpu-nvidia-h100-80gb-hbm3-1x.json"
    message = only(problems(tmp_path, text=path.read_text(), name=path.name))
    assert message.startswith(f"results/{path.name}: $: JSON is cut off")
    assert "truncated" in message and "line " in message


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1} trailing', "not valid JSON: Extra data"),
    ('{"a": 1, "a": 2}', 'not valid result JSON: key "a" appears twice in one object'),
    ("[1, 2]", "top level is a list; expected a JSON object"),
    ("", "JSON is cut off"),
    ("[" * 100000 + "]" * 100000, "not valid result JSON: maximum recursion depth"),
])
def test_malformed_json(tmp_path, text, expected):
    assert expected in only(problems(tmp_path, text=text, name="bad.json"))


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes(b'{"device_kind": "caf\xe9"}')
    _, found = load_valid([(path, "latin.json")], REGISTRY)
    assert "is not UTF-8" in str(only(found))


@pytest.mark.parametrize("version", [4, 0, True, "1"])
def test_unknown_schema_version(tmp_path, version):
    data = base()
    data["provenance"]["schema_version"] = version
    message = only(problems(tmp_path, data))
    assert f"$.provenance.schema_version: unknown schema_version {version!r}" in message
    assert "update the reporter" in message


def test_forged_gpu_claim_on_a_cpu_backend(tmp_path):
    path = RESULTS / "invalid" / "20261101T100000Z-gpu-nvidia-h100-80gb-hbm3-1x.json"
    message = only(problems(tmp_path, text=path.read_text(), name=path.name))
    assert "$.provenance.device_kind: backend 'cpu' with device_kind 'NVIDIA H100 80GB HBM3'" \
        in message
    assert "fingerprint disagrees" in message


@pytest.mark.parametrize(("backend", "kind", "reason"), [
    ("tpu", "NVIDIA A100-SXM4-40GB", "expected a TPU device_kind"),
    ("gpu", "TPU v4", "that is not a GPU device_kind"),
    ("gpu", "cpu", "that is not a GPU device_kind"),
    ("cpu", "TPU v2", "expected device_kind 'cpu'"),
])
def test_fingerprint_must_agree(tmp_path, backend, kind, reason):
    data = base()
    data["provenance"].update(backend=backend, device_kind=kind)
    message = only(problems(tmp_path, data))
    assert "$.provenance.device_kind" in message and reason in message


def test_injection_in_a_gpu_device_kind_is_rejected(tmp_path):
    path = RESULTS / "invalid" / "20261121T090000Z-gpu-nvidia-script-alert-1-script-1x.json"
    message = only(problems(tmp_path, text=path.read_text(), name=path.name))
    assert "gives no recognisable GPU model name" in message


@pytest.mark.parametrize(("field", "value"), [
    (("provenance", "command"), "/home/alice/.venv/bin/nox -s matrix"),
    (("provenance", "command"), "nox -s matrix -- --ckpt /Users/bob/ckpt"),
    (("provenance", "command"), "nox -s matrix -- --cache /root/.cache"),
    (("root",), "/home/alice/gemma3-jax"),
])
def test_home_paths_are_rejected(tmp_path, field, value):
    data = base()
    target = data
    for key in field[:-1]:
        target = target[key]
    target[field[-1]] = value
    message = only(problems(tmp_path, data))
    assert f"$.{'.'.join(field)}: contains a home directory path" in message


def test_tokens_are_rejected_without_repeating_them(tmp_path):
    token = "hf_" + "aB3" * 10
    data = base()
    data["provenance"]["command"] = f"HF_TOKEN={token} nox -s matrix"
    data["tests"][0]["call"]["longrepr"] = f"401 for token {token}"
    found = problems(tmp_path, data)
    assert len(found) == 2
    assert all("looks like an access token (hf_aB3…)" in m and token not in m for m in found)
    assert any("$.tests[0].call.longrepr" in m for m in found)


def test_short_hf_strings_are_not_tokens(tmp_path):
    data = base()
    data["provenance"]["command"] = "nox -s matrix -- --name hf_cache"
    assert problems(tmp_path, data) == []


def _nodeid_problem(tmp_path, nodeid: str, index: int = 0) -> str:
    data = base()
    data["tests"][index]["nodeid"] = nodeid
    data["tests"][index].pop("metadata")
    return "\n".join(problems(tmp_path, data))


def test_nodeid_with_an_unknown_model(tmp_path):
    found = _nodeid_problem(
        tmp_path, "harness/checks/test_load.py::test_load[gemma-3-2b-it-float32]")
    assert "$.tests[0].nodeid: model id 'gemma-3-2b-it' is not in contract/models.json" in found


def test_nodeid_with_an_unknown_dtype(tmp_path):
    found = _nodeid_problem(
        tmp_path, "harness/checks/test_load.py::test_load[gemma-3-270m-float16]")
    assert "$.tests[0].nodeid: dtype 'float16' is not one of float32, bfloat16" in found


def test_nodeid_outside_the_harness(tmp_path):
    found = _nodeid_problem(tmp_path, "tests/test_model.py::test_forward")
    assert "is not a harness check id" in found


def test_duplicate_nodeid(tmp_path):
    data = base()
    data["tests"][1]["nodeid"] = data["tests"][0]["nodeid"]
    data["tests"][1]["metadata"] = copy.deepcopy(data["tests"][0]["metadata"])
    assert "$.tests[1].nodeid: " in only(
        [m for m in problems(tmp_path, data) if "appears twice" in m])


@pytest.mark.parametrize(("key", "value"), [
    ("model", "gemma-3-1b-it"), ("dtype", "bfloat16"), ("check", "logits"),
])
def test_metadata_must_agree_with_the_nodeid(tmp_path, key, value):
    data = base()
    assert data["tests"][0]["nodeid"].endswith("test_load[gemma-3-270m-float32]")
    data["tests"][0]["metadata"][key] = value
    assert f"$.tests[0].metadata.{key}: {value!r} disagrees with the node id" in "\n".join(
        problems(tmp_path, data))


def test_unknown_model_in_provenance(tmp_path):
    data = base()
    data["provenance"]["models"]["gemma-4-1b"] = data["provenance"]["models"]["gemma-3-270m"]
    assert only(problems(tmp_path, data)).endswith(
        "$.provenance.models[\"gemma-4-1b\"]: model id 'gemma-4-1b' is not in "
        "contract/models.json; use a registry id")


def test_tests_need_a_provenance_entry(tmp_path):
    data = base()
    del data["provenance"]["models"]["gemma-3-270m"]
    assert "has tests but no provenance.models entry" in problems(tmp_path, data)[0]


def test_not_supported_model_cannot_have_run_tests(tmp_path):
    data = base()
    entry = data["provenance"]["models"]["gemma-3-270m"]
    entry.update(status="not_supported", reason="needs 2 GiB > has 1 GiB",
                 predicted_bytes=2 * 2**30, available_bytes=2**30)
    assert "recorded not_supported, yet this test ran" in problems(tmp_path, data)[0]


def test_failed_model_needs_a_cause(tmp_path):
    data = base()
    data["provenance"]["models"]["gemma-3-27b-it"].update(status="failed", reason="segfault")
    message = only(problems(tmp_path, data))
    assert "$.provenance.models[\"gemma-3-27b-it\"].reason: 'segfault' does not match" in message


def test_summary_must_count_the_tests(tmp_path):
    data = base()
    data["summary"]["passed"] += 1
    data["summary"]["total"] += 1
    found = problems(tmp_path, data)
    assert any("$.summary.passed: says" in m for m in found)
    assert any("$.summary.total: says" in m for m in found)


def test_future_dates_are_rejected(tmp_path):
    data = base()
    data["provenance"]["utc_time"] = "2099-01-01T00:00:00Z"
    assert "is in the future" in only(problems(tmp_path, data, name="x.json"))


def test_impossible_dates_are_rejected(tmp_path):
    data = base()
    data["provenance"]["utc_time"] = "2026-02-30T00:00:00Z"
    assert "is not a real UTC time" in only(problems(tmp_path, data, name="x.json"))


def test_file_name_must_match_the_provenance(tmp_path):
    message = only(problems(tmp_path, base(), name="20261101T100000Z-cpu-cpu-8x.json"))
    assert message == (
        "results/20261101T100000Z-cpu-cpu-8x.json: file name: "
        "'20261101T100000Z-cpu-cpu-8x.json' does not match its provenance (time, backend, "
        "device, count); expected '20261101T100000Z-cpu-cpu-1x.json': rename the file")


def test_unknown_provenance_keys_are_rejected(tmp_path):
    data = base()
    data["provenance"]["tpu_topology"] = "2x2"
    assert "Additional properties are not allowed ('tpu_topology' was unexpected)" in only(
        problems(tmp_path, data))


def test_missing_provenance(tmp_path):
    data = base()
    del data["provenance"]
    # Judged against the newest schema, whose other rules this v1 body breaks too.
    assert any(p.endswith("$: 'provenance' is a required property")
               for p in problems(tmp_path, data, name="x.json"))


def test_unsafe_version_strings_are_rejected(tmp_path):
    data = base()
    data["provenance"]["versions"]["transformers"] = "5.0 <b>"
    assert "$.provenance.versions.transformers: '5.0 <b>' does not match" in only(
        problems(tmp_path, data))


def v2() -> dict:
    return json.loads(V2_FILE.read_text(encoding="utf-8"))


V2_ENTRY = '$.provenance.models["gemma-3-270m"]'


def test_the_schema_is_chosen_by_schema_version(tmp_path):
    assert problems(tmp_path, v2()) == []
    data = v2()
    data["provenance"]["schema_version"] = 1  # v1 has no evidence, quantization or cpu_flags
    found = problems(tmp_path, data)
    assert any("$.provenance.host: Additional properties are not allowed ('cpu_flags'" in message
               for message in found), found


@pytest.mark.parametrize("evidence", ["real", "synthetic"])
def test_a_gguf_checkpoint_can_only_be_real_quantized_evidence(tmp_path, evidence):
    data = v2()
    data["provenance"]["models"]["gemma-3-270m"]["evidence"] = evidence
    assert f"{V2_ENTRY}.evidence: 'real_quantized' was expected" in only(problems(tmp_path, data))


def test_quantized_evidence_needs_a_real_quantized_source(tmp_path):
    data = v2()
    entry = data["provenance"]["models"]["gemma-3-270m"]
    entry["checkpoint"] = "local:" + "0" * 64  # quantized weights claiming a plain checkpoint
    found = problems(tmp_path, data)
    assert f"{V2_ENTRY}.evidence: 'real' was expected" in found[0]
    assert found[1].endswith("is not of type 'null'") and ".quantization: " in found[1]


def test_quantized_evidence_needs_its_tensor_type_mix(tmp_path):
    data = v2()
    del data["provenance"]["models"]["gemma-3-270m"]["quantization"]["tensor_types"]
    assert "'tensor_types' is a required property" in " ".join(problems(tmp_path, data))


def test_the_gguf_source_and_the_recorded_file_hash_agree(tmp_path):
    data = v2()
    data["provenance"]["models"]["gemma-3-270m"]["quantization"]["file_sha256"] = "1" * 64
    message = only(problems(tmp_path, data))
    assert f"{V2_ENTRY}.quantization.file_sha256: '{'1' * 64}' differs" in message


def test_v2_needs_cpu_flags(tmp_path):
    data = v2()
    del data["provenance"]["host"]["cpu_flags"]
    assert only(problems(tmp_path, data)).endswith(
        "$.provenance.host: 'cpu_flags' is a required property")


def test_recorded_texts_are_capped(tmp_path):
    data = v2()
    test = next(t for t in data["tests"] if t["metadata"]["check"] == "realtext")
    test["metadata"]["texts"]["ours"] = ["x" * 2001]
    assert only(problems(tmp_path, data)).startswith(
        "results/20261126T100000Z-cpu-cpu-1x.json: $.tests[4].metadata.texts.ours[0]: ")


def test_versions_keep_allowing_extra_keys(tmp_path):
    data = v2()
    data["provenance"]["versions"]["cuda_driver"] = "580.65"
    assert problems(tmp_path, data) == []
