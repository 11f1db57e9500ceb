"""Comparisons: logits statistics, near-ties, greedy parity with restarts, layer drift."""

import numpy as np
import pytest

from contract.bounds import bounds
from harness.parity import greedy, metrics


def test_identical_logits_compare_perfectly():
    ref = np.random.default_rng(0).normal(0, 8, (5, 50)).astype(np.float32)
    stats = metrics.compare_logits(ref.copy(), ref, tie_rel=0.03)
    assert stats.max_abs_diff == 0 and stats.top1_agreement == 1 and stats.confident_misses == 0
    assert stats.mean_kl == pytest.approx(0, abs=1e-12)
    assert stats.median_top1_margin == pytest.approx(np.median(metrics.top1_margins(ref)))


def test_a_flip_is_excused_only_at_a_near_tie():
    ref = np.zeros((2, 4), np.float32)
    ref[0, :2] = [10.0, 9.9]  # near-tie (margin 0.1 < 0.03 * 10)
    ref[1, :2] = [10.0, 5.0]  # confident
    ours = ref.copy()
    ours[0, :2] = [9.9, 10.0]
    assert metrics.compare_logits(ours, ref, 0.03).confident_misses == 0
    ours[1, :2] = [5.0, 10.0]
    stats = metrics.compare_logits(ours, ref, 0.03)
    assert stats.confident_misses == 1 and stats.top1_agreement == 0


def test_kl_is_positive_for_different_distributions():
    ref = np.array([[0.0, 1.0, 2.0]], np.float32)
    kl = metrics.kl_rows(ref, ref[:, ::-1].copy())
    assert kl[0] > 0.5


def test_first_divergence():
    assert metrics.first_divergence(np.array([1, 2, 3]), np.array([1, 2, 3])) is None
    assert metrics.first_divergence(np.array([1, 5, 3]), np.array([1, 2, 9])) == 1


def test_layer_drift_names_the_first_layer_that_drifts():
    ref = np.ones((4, 3, 2), np.float32)
    ours = [ref[i].copy() for i in range(4)]
    ours[2] = ours[2] * 1.5
    drift = metrics.layer_drift(ours, ref, threshold=1e-3)
    assert drift.first_drift == 2 and "output of layer 1" in drift.describe()


class FakeGenerate:
    """Continues a fixed 'true' sequence, except at given steps where it picks another token."""

    def __init__(self, truth, prompt_len, wrong_at):
        self.truth, self.prompt_len, self.wrong_at, self.calls = truth, prompt_len, wrong_at, 0

    def __call__(self, model, ids, max_new_tokens, timings):
        self.calls += 1
        start = ids.shape[1] - self.prompt_len
        out = self.truth[start:start + max_new_tokens].copy()
        for step in self.wrong_at:
            if step >= start:
                out[step - start] = -1
                break
        timings.new_tokens = max_new_tokens
        return np.pad(out, (0, max_new_tokens - len(out)))[None]


@pytest.fixture
def truth():
    return np.arange(100, 124)


def test_near_ties_restart_and_the_rest_is_still_compared(monkeypatch, truth):
    fake = FakeGenerate(truth, 5, wrong_at=[3, 10])
    monkeypatch.setattr(greedy, "generate", fake)
    margins = np.full(24, 5.0)
    margins[[3, 10]] = 0.01
    run = greedy.greedy_parity(None, np.zeros((1, 5), np.int32), truth, margins, tie=0.5)
    assert [d.step for d in run.divergences] == [3, 10] and run.first_divergent_step == 3
    assert not run.confident and fake.calls == 3 and run.timings.new_tokens == 24


def test_a_confident_divergence_stops_and_is_reported(monkeypatch, truth):
    monkeypatch.setattr(greedy, "generate", FakeGenerate(truth, 5, wrong_at=[7]))
    run = greedy.greedy_parity(None, np.zeros((1, 5), np.int32), truth, np.full(24, 5.0), 0.5)
    assert [d.step for d in run.confident] == [7] and run.confident[0].ours == -1


def test_too_many_near_ties_is_reported(monkeypatch, truth):
    steps = list(range(0, 2 * (greedy.MAX_RESTARTS + 2), 2))
    monkeypatch.setattr(greedy, "generate", FakeGenerate(truth, 5, wrong_at=steps))
    run = greedy.greedy_parity(None, np.zeros((1, 5), np.int32), truth, np.zeros(24), 0.5)
    assert run.restarts_exhausted and len(run.divergences) == greedy.MAX_RESTARTS + 1


def test_bounds_are_data_keyed_by_dtype_and_backend():
    assert bounds("bfloat16", "tpu") == bounds("bfloat16", None)
    assert bounds("float32", "cpu").max_abs_rel < bounds("bfloat16", "cpu").max_abs_rel
    with pytest.raises(KeyError, match="contract/bounds.py"):
        bounds("float16", None)
