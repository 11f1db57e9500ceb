"""logits: the logits prompt against transformers (max |diff|, KL, top-1 agreement). On failure
the message names the first layer whose hidden state drifted from the reference's."""

import numpy as np

from harness.parity.metrics import compare_logits, layer_drift


def test_logits(model, reference, prompts, limits, case, record):
    ours = np.asarray(model(prompts.logits), np.float32)[0]
    stats = compare_logits(ours, reference["logits"], limits.tie_rel)
    problems = record(stats.measurements())
    if problems:
        _, hidden = model(prompts.logits, return_hidden_states=True)
        drift = layer_drift([np.asarray(h, np.float32)[0] for h in hidden], reference["hidden"],
                            limits.hidden_rel)
        raise AssertionError(f"{case.id} logits differ from transformers (logit scale "
                             f"{stats.scale:.3g}): " + "; ".join(problems) + ". "
                             + drift.describe())
