"""Verdicts re-derived from their numbers (matrix/verdicts.py): a file whose `passed` checks
break the project's bounds, or whose recorded bounds are looser than the table, is refused."""

import copy
import json

import pytest

from contract.bounds import check_bounds
from contract.checks import parse_nodeid
from contract.registry import load_registry
from matrix.pipeline import load_valid
from tests.support import DATA

# A real CPU result (schema v2, synthetic weights, every model of the 2026-12-02 matrix run).
REAL_V2 = DATA / "verdicts" / "20261202T020754Z-cpu-cpu-1x.json"
REGISTRY = load_registry()


def v2() -> dict:
    return json.loads(REAL_V2.read_text("utf-8"))


def v3(data: dict) -> dict:
    """The same run as schema v3 would record it: each check's bounds beside its numbers
    (and the measurements v3 added, all within their bounds)."""
    data = copy.deepcopy(data)
    data["provenance"]["schema_version"] = 3
    backend = data["provenance"]["backend"]
    for test in data["tests"]:
        meta = test.get("metadata")
        if not meta:
            continue
        node = parse_nodeid(test["nodeid"])
        meta.setdefault("measurements", {}).update(
            {"parameter_mismatch": 0} if node.check == "load" else
            {"restarts_exhausted": 0} if node.check == "generate" else {})
        meta["bounds"] = [b.as_record() for b in check_bounds(node.check, node.dtype, backend)]
    return data


def problems(tmp_path, data) -> list[str]:
    path = tmp_path / REAL_V2.name
    path.write_text(json.dumps(data), "utf-8")
    results, found = load_valid([(path, f"results/{REAL_V2.name}")], REGISTRY)
    assert bool(results) != bool(found)
    return [str(p) for p in found]


def contradicted(data: dict) -> dict:
    """Every logits check still `passed`, its numbers set far outside any bound."""
    for test in data["tests"]:
        if "::test_logits[" in test["nodeid"] and test["outcome"] == "passed":
            test["metadata"]["measurements"].update(top1_agreement=0.01, max_kl=50.0,
                                                    confident_misses=40)
    return data


def logits_ids(data: dict) -> list[str]:
    return [t["nodeid"] for t in data["tests"] if "::test_logits[" in t["nodeid"]]


@pytest.mark.parametrize("make", [v2, lambda: v3(v2())], ids=["v2", "v3"])
def test_a_consistent_file_is_accepted(tmp_path, make):
    assert problems(tmp_path, make()) == []


@pytest.mark.parametrize("make", [v2, lambda: v3(v2())], ids=["v2", "v3"])
def test_passed_checks_whose_numbers_break_the_bounds_are_refused(tmp_path, make):
    data = contradicted(make())
    found = problems(tmp_path, data)
    nodeid = "harness/checks/test_logits.py::test_logits[gemma-3-270m-bfloat16]"
    assert (f"results/{REAL_V2.name}: $.tests[{_index(data, nodeid)}].outcome: {nodeid}: "
            "recorded 'passed' but top1_agreement 0.01 breaks top1_min >= 0.8") in found
    assert any("max_kl 50 breaks max_kl <= 0.3" in p for p in found)
    assert any("confident_misses 40 breaks confident_misses <= 0" in p for p in found)
    # Three numbers broken in each logits check of every model and dtype, nothing else.
    assert len(found) == 3 * len(logits_ids(data))


def test_a_bound_looser_than_the_table_is_refused(tmp_path):
    data = v3(v2())
    nodeid = "harness/checks/test_batch.py::test_batch[gemma-3-1b-it-float32]"
    test = data["tests"][_index(data, nodeid)]
    next(b for b in test["metadata"]["bounds"] if b["name"] == "max_abs_rel")["value"] = 0.5
    assert problems(tmp_path, data) == [(
        f"results/{REAL_V2.name}: $.tests[{_index(data, nodeid)}].metadata.bounds: {nodeid}: "
        "bound max_abs_rel = 0.5 on max_abs_rel is looser than the project's 0.0001 "
        "(max_abs_rel <= 0.0001)")]


def test_a_looser_near_tie_parameter_is_refused_too(tmp_path):
    data = v3(v2())
    nodeid = "harness/checks/test_generate.py::test_generate[gemma-3-270m-bfloat16]"
    test = data["tests"][_index(data, nodeid)]
    next(b for b in test["metadata"]["bounds"] if b["name"] == "tie_rel")["value"] = 1.0
    assert problems(tmp_path, data) == [(
        f"results/{REAL_V2.name}: $.tests[{_index(data, nodeid)}].metadata.bounds: {nodeid}: "
        "bound tie_rel = 1 on the check is looser than the project's 0.03 (tie_rel <= 0.03)")]


def test_a_tighter_bound_is_accepted_and_judges_the_outcome(tmp_path):
    data = v3(v2())
    nodeid = "harness/checks/test_memory.py::test_memory[gemma-3-270m-float32]"
    test = data["tests"][_index(data, nodeid)]
    ratio = test["metadata"]["measurements"]["ratio"]
    next(b for b in test["metadata"]["bounds"] if b["name"] == "memory_slack")["value"] = ratio
    assert problems(tmp_path, data) == []  # tighter, and the measurement still meets it
    next(b for b in test["metadata"]["bounds"] if b["name"] == "memory_slack")["value"] = ratio / 2
    assert problems(tmp_path, data) == [(
        f"results/{REAL_V2.name}: $.tests[{_index(data, nodeid)}].outcome: {nodeid}: recorded "
        f"'passed' but ratio {ratio:.4g} breaks memory_slack <= {ratio / 2:g}")]


def test_a_missing_or_unknown_bound_is_refused(tmp_path):
    data = v3(v2())
    nodeid = "harness/checks/test_speed.py::test_speed[gemma-3-270m-bfloat16]"
    test = data["tests"][_index(data, nodeid)]
    test["metadata"]["bounds"] = [{"name": "vibes", "measurement": "new_tokens", "limit": "min",
                                   "value": 0}]
    found = problems(tmp_path, data)
    assert any("bound 'vibes' is not one of the table's for this check (new_tokens)" in p
               for p in found)
    assert any("bound 'new_tokens' of the table was not recorded" in p for p in found)


def test_a_passed_check_that_did_not_measure_is_refused(tmp_path):
    data = v3(v2())
    nodeid = "harness/checks/test_memory.py::test_memory[gemma-3-1b-pt-bfloat16]"
    data["tests"][_index(data, nodeid)]["metadata"]["measurements"]["ratio"] = None
    assert problems(tmp_path, data) == [(
        f"results/{REAL_V2.name}: $.tests[{_index(data, nodeid)}].outcome: {nodeid}: recorded "
        "'passed' but ratio was not measured (bound memory_slack <= 1.25)")]


def test_a_failed_check_with_good_numbers_stays_a_failure(tmp_path):
    """A check may fail for a reason its numbers do not show (an exception): not re-derived."""
    data = v3(v2())
    nodeid = "harness/checks/test_logits.py::test_logits[gemma-3-270m-bfloat16]"
    data["tests"][_index(data, nodeid)]["outcome"] = "failed"
    data["summary"]["passed"] -= 1
    data["summary"]["failed"] = data["summary"].get("failed", 0) + 1
    data["exitcode"] = 1
    assert problems(tmp_path, data) == []


def _index(data: dict, nodeid: str) -> int:
    return next(i for i, t in enumerate(data["tests"]) if t["nodeid"] == nodeid)
