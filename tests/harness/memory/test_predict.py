"""The predicted cells of the accelerator columns: the committed contract/predictions.json is
what the planner predicts now, and the band around a device's memory reads as the docs say."""

from harness.checkpoints import registry
from harness.memory import predict

GiB = 2**30


def test_the_committed_predictions_are_current():
    committed = predict.OUTPUT.read_text("utf-8")
    assert committed == predict.render(), (
        "contract/predictions.json is stale: run `python -m harness.memory.predict`")


def test_the_band_uses_the_planners_lowest_measured_ratio_and_the_memory_slack():
    has = 16 * GiB
    # Refused only if the need stays above the memory at the planner's largest overestimate.
    assert predict.judge(int(has / 0.66), has, "tpu") == "refused"
    assert predict.judge(int(has / 0.68), has, "tpu") == "tight"
    # Fits only with the memory check's slack (1.25x) on top.
    assert predict.judge(int(has / 1.24), has, "tpu") == "tight"
    assert predict.judge(int(has / 1.26), has, "tpu") == "fits"


def test_the_27b_cannot_fit_one_tpu_v5e_chip_and_the_4b_fits_every_gpu_column():
    cells = predict.predictions()["cells"]
    v5e = cells["gemma-3-27b-it"]["TPU v5e (1x)"]
    assert v5e["verdict"] == "refused" and v5e["has_bytes"] == 16 * GiB
    assert all(cells["gemma-3-4b-it"][c]["verdict"] == "fits" for c in predict.COLUMNS
               if c.startswith("GPU"))


def test_a_column_of_two_cards_shows_the_smallest_that_is_not_refused():
    model = registry.get("gemma-3-27b-it")
    count, cards = predict.COLUMNS["GPU A100 (1x)"]
    assert predict.predict(model, count, cards[:1])["verdict"] == "refused"  # 40 GB alone
    cell = predict.predict(model, count, cards)
    assert cell["per"] == "A100 80GB" and cell["verdict"] != "refused"


def test_on_eight_gpus_the_27b_reference_is_spread_and_on_a_tpu_it_is_on_the_host():
    cells = predict.predictions()["cells"]["gemma-3-27b-it"]
    assert cells["GPU A100 (8x)"]["reference"] == "cuda:0-7 (8 GPUs)"
    assert cells["TPU v2 (8x)"]["reference"] == "host RAM"
