"""logits: the logits prompt against transformers (max |diff|, KL, top-1 agreement). On failure
the message names the first layer whose hidden state drifted from the reference's."""

import numpy as np

from harness.parity.metrics import compare_logits, layer_drift


def test_logits(model, reference, prompts, limits, case, record):
    ours = np.asarray(model(prompts.logits), np.float32)[0]
    stats = compare_logits(ours, reference["logits"], limits.tie_rel)
    record(stats.measurements())
    problems = _problems(stats, limits)
    if problems:
        _, hidden = model(prompts.logits, return_hidden_states=True)
        drift = layer_drift([np.asarray(h, np.float32)[0] for h in hidden], reference["hidden"],
                            limits.hidden_rel)
        raise AssertionError(f"{case.id} logits differ from transformers: "
                             + "; ".join(problems) + ". " + drift.describe())


def _problems(stats, limits) -> list[str]:
    found = []
    if stats.max_abs_rel > limits.max_abs_rel:
        found.append(f"max |diff| {stats.max_abs_diff:.3g} is {stats.max_abs_rel:.2e} of the "
                     f"logit scale {stats.scale:.3g} (bound {limits.max_abs_rel:.0e})")
    if stats.mean_kl > limits.mean_kl or stats.max_kl > limits.max_kl:
        found.append(f"KL mean {stats.mean_kl:.2e} / max {stats.max_kl:.2e} (bounds "
                     f"{limits.mean_kl:.0e} / {limits.max_kl:.0e})")
    if stats.top1_agreement < limits.top1_min or stats.confident_misses:
        found.append(f"top-1 agreement {stats.top1_agreement:.3f} (bound {limits.top1_min}), "
                     f"{stats.confident_misses} misses where the reference was not near a tie")
    return found
