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
    problems = record({**stats.measurements(), "confident_divergences": len(confident)})
    assert not problems, (f"{case.id}: the left-padded batch differs from transformers: "
                          + "; ".join(problems) + (f"; greedy decoding diverged at (row, step) "
                                                   f"{confident}" if confident else ""))
