"""batch: two prompts of different lengths, the shorter left-padded: logits at every real
position, and a short greedy continuation of both rows, against transformers."""

import numpy as np

from gemma3.generation.loop import generate
from harness.parity.metrics import compare_logits, first_divergence


def test_batch(model, reference, prompts, limits, logit_scale, case, record):
    mask = prompts.batch_mask.astype(bool)
    ours = np.asarray(model(prompts.batch_ids, attention_mask=prompts.batch_mask), np.float32)
    stats = compare_logits(ours[mask], reference["batch_logits"][mask], limits.tie_rel)
    tokens = generate(model, prompts.batch_ids, prompts.batch_mask,
                      max_new_tokens=prompts.batch_new_tokens)
    tie = limits.tie_rel * logit_scale
    confident = []
    for row in range(len(tokens)):
        step = first_divergence(tokens[row], reference["batch_tokens"][row])
        if step is not None and reference["batch_margin"][row, step] >= tie:
            confident.append((row, step))
    record({**stats.measurements(), "confident_divergences": len(confident)})
    assert stats.max_abs_rel <= limits.max_abs_rel and stats.mean_kl <= limits.mean_kl, (
        f"{case.id}: left-padded batch logits differ: max |diff| {stats.max_abs_rel:.2e} of the "
        f"scale (bound {limits.max_abs_rel:.0e}), mean KL {stats.mean_kl:.2e} "
        f"(bound {limits.mean_kl:.0e})")
    assert stats.confident_misses == 0, (
        f"{case.id}: {stats.confident_misses} batch positions pick another top-1 where the "
        "reference is not near a tie")
    assert not confident, (f"{case.id}: batched greedy decoding diverged (row, step) "
                           f"{confident} where the reference was not near a tie")
