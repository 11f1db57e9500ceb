"""Cell rules: what one result says about a model, and which result a cell shows."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from contract.registry import Model
from matrix.load import Result
from matrix.merge import merge, pick
from matrix.status import FAILS, NOT_SUPPORTED, RUNS, Evidence, cell_text, model_verdict
from matrix.status import tests_by_model as group_by_model

TEXT = Model("gemma-3-1b-it", "google/gemma-3-1b-it", "1b", "it", False)
VISION = Model("gemma-3-4b-it", "google/gemma-3-4b-it", "4b", "it", True)
REQUIRED = ("load", "logits", "generate", "batch", "memory")


def fake_tests(model, outcomes):
    """Fake tests: {(check, dtype): outcome} -> (node, test) pairs as status sees them."""
    raw = [{"nodeid": f"harness/checks/test_{check}.py::test_{check}[{model.id}-{dtype}]",
            "outcome": outcome} for (check, dtype), outcome in outcomes.items()]
    return group_by_model(raw).get(model.id, [])


def entry(status="ran", reason=None):
    return {"checkpoint": "synthetic:0", "status": status, "reason": reason}


def all_passed(*checks):
    return {(check, "bfloat16"): "passed" for check in checks}


def test_all_required_passed_runs():
    assert model_verdict(TEXT, entry(), fake_tests(TEXT, all_passed(*REQUIRED))) == (RUNS, "")


def test_multimodal_model_also_needs_the_multimodal_check():
    assert model_verdict(VISION, entry(), fake_tests(VISION, all_passed(*REQUIRED))) is None
    outcomes = all_passed(*REQUIRED, "multimodal")
    assert model_verdict(VISION, entry(), fake_tests(VISION, outcomes)) == (RUNS, "")


@pytest.mark.parametrize("outcomes", [
    {},  # nothing collected
    {(check, "bfloat16"): "skipped" for check in REQUIRED},  # all skipped
    {**all_passed(*REQUIRED), ("memory", "bfloat16"): "skipped"},  # one skipped
    {**all_passed(*REQUIRED), ("batch", "bfloat16"): "xfailed"},
    {(check, "float32"): "passed" for check in REQUIRED},  # passes only in float32
])
def test_incomplete_results_say_nothing(outcomes):
    assert model_verdict(TEXT, entry(), fake_tests(TEXT, outcomes)) is None


def test_first_failing_check_in_pipeline_order_any_dtype():
    outcomes = {**all_passed(*REQUIRED), ("memory", "bfloat16"): "failed",
                ("generate", "float32"): "error"}
    assert model_verdict(TEXT, entry(), fake_tests(TEXT, outcomes)) == (FAILS, "generate")


def test_dead_process_fails_with_its_cause():
    assert model_verdict(TEXT, entry("failed", "timeout after 3600 s"), []) == (FAILS, "timeout")


def test_not_supported_gives_the_reason():
    verdict = model_verdict(TEXT, entry("not_supported", "needs 9 GiB > has 8 GiB"), [])
    assert verdict == (NOT_SUPPORTED, "needs 9 GiB > has 8 GiB")


def evidence(kind, day, *, stale=(), name=None, weights="synthetic", detail=""):
    name = name or f"{day:02d}-{kind}-{weights}.json"
    when = datetime(2026, 11, day, tzinfo=UTC)
    weights = None if kind == NOT_SUPPORTED else weights
    return Evidence("gemma-3-1b-it", "GPU A100 (1x)", kind, detail, when, weights, stale,
                    Result(Path(name), name, {}))


@pytest.mark.parametrize(("items", "winner"), [
    ([(RUNS, 1), (FAILS, 2)], (FAILS, 2)),  # newer failure beats older pass
    ([(FAILS, 1), (RUNS, 2)], (RUNS, 2)),  # newer pass beats older failure
    ([(RUNS, 1), (NOT_SUPPORTED, 2)], (RUNS, 1)),  # ✅ beats ⛔️ whatever the dates
    ([(FAILS, 1), (NOT_SUPPORTED, 2)], (FAILS, 1)),  # a run beats a refusal
    ([(NOT_SUPPORTED, 1), (NOT_SUPPORTED, 2)], (NOT_SUPPORTED, 2)),
    ([(RUNS, 3), (FAILS, 3)], (FAILS, 3)),  # same time: the failure shows
])
def test_pick(items, winner):
    chosen = pick([evidence(kind, day) for kind, day in items])
    assert (chosen.kind, chosen.time.day) == winner


def test_same_time_prefers_current_code():
    stale, fresh = evidence(RUNS, 5, stale=("old",), name="a.json"), evidence(FAILS, 5,
                                                                              name="b.json")
    assert pick([stale, fresh]) is fresh


def test_pick_does_not_depend_on_reading_order():
    items = [evidence(RUNS, 4, name="a.json"), evidence(RUNS, 4, name="b.json")]
    assert pick(items) is pick(items[::-1])


def test_merge_keys_by_model_and_column():
    items = [evidence(RUNS, 1), evidence(FAILS, 2)]
    cells = merge(items)
    assert list(cells) == [("gemma-3-1b-it", "GPU A100 (1x)")]
    assert cells[("gemma-3-1b-it", "GPU A100 (1x)")].shown is items[1]


def test_real_text_checks_are_required_for_real_weights_only():
    outcomes = all_passed(*REQUIRED)
    assert model_verdict(TEXT, entry(), fake_tests(TEXT, outcomes), ("realtext",)) is None
    outcomes = all_passed(*REQUIRED, "realtext")
    assert model_verdict(TEXT, entry(), fake_tests(TEXT, outcomes), ("realtext",)) == (RUNS, "")


def test_a_cell_with_two_kinds_lists_both_and_marks_the_agreeing_ones():
    synthetic, quantized = evidence(RUNS, 1), evidence(RUNS, 2, weights="real_quantized")
    cell = merge([synthetic, quantized])[("gemma-3-1b-it", "GPU A100 (1x)")]
    assert cell.shown is quantized and cell.by_kind == (quantized, synthetic)
    assert cell.weights == ("real_quantized", "synthetic")
    assert str(cell_text(cell.shown, cell.weights)) == "✅ Runs 🗜️ 🧪"


def test_a_kind_whose_best_result_disagrees_lends_no_mark():
    synthetic = evidence(RUNS, 1)
    quantized = evidence(FAILS, 2, weights="real_quantized", detail="realtext")
    cell = merge([synthetic, quantized])[("gemma-3-1b-it", "GPU A100 (1x)")]
    assert cell.by_kind == (quantized, synthetic) and cell.weights == ("real_quantized",)
    assert str(cell_text(cell.shown, cell.weights)) == "❌ Fails (realtext) 🗜️"


def test_a_refusal_beside_a_run_is_not_listed():
    run, refusal = evidence(RUNS, 1), evidence(NOT_SUPPORTED, 2)
    cell = merge([run, refusal])[("gemma-3-1b-it", "GPU A100 (1x)")]
    assert cell.shown is run and cell.by_kind == (run,)


def test_disagreeing_current_evidence_is_shown_in_the_cell():
    """✅ from one machine, ❌ from another of the column: the newest shows, the count says the
    other exists, and the details list both."""
    passed, failed = evidence(RUNS, 5, name="b.json"), evidence(FAILS, 4, detail="logits",
                                                               name="a.json")
    cell = merge([passed, failed])[("gemma-3-1b-it", "GPU A100 (1x)")]
    assert cell.shown is passed and cell.dissent == (failed,)
    assert cell.text() == "✅ Runs (1 of 2 ❌) 🧪"
    assert cell.listed == (passed, failed)
    newer_failure = merge([passed, evidence(FAILS, 6, detail="batch", name="c.json"), failed])
    assert newer_failure[("gemma-3-1b-it", "GPU A100 (1x)")].text() == "❌ Fails (batch) (1 of 3 ✅) 🧪"


def test_stale_or_other_kind_evidence_is_no_disagreement():
    passed = evidence(RUNS, 5)
    for other in (evidence(FAILS, 4, stale=("ran on different gemma3/ code",)),
                  evidence(FAILS, 4, weights="real_quantized", detail="realtext"),
                  evidence(NOT_SUPPORTED, 4, detail="needs 9.0 GiB > has 8.0 GiB")):
        cell = merge([passed, other])[("gemma-3-1b-it", "GPU A100 (1x)")]
        assert cell.dissent == () and "of" not in cell.text()
