"""multimodal (4b and up): a prompt with one image block and seeded pixel_values; logits of the
last positions (text after the image, which attends to it) against transformers."""

import numpy as np
import pytest

from harness.parity.metrics import compare_logits
from harness.parity.prompts import MULTIMODAL_COMPARED


@pytest.mark.multimodal_only
def test_multimodal(model, reference, prompts, limits, case, record):
    inputs = prompts.multimodal
    logits = model(inputs["input_ids"], pixel_values=inputs["pixel_values"],
                   token_type_ids=inputs["token_type_ids"])
    ours = np.asarray(logits, np.float32)[0, -MULTIMODAL_COMPARED:]
    stats = compare_logits(ours, reference["mm_logits"], limits.tie_rel)
    problems = record(stats.measurements())
    assert not problems, (f"{case.id}: logits after the image differ from transformers: "
                          + "; ".join(problems) + f" (mean KL {stats.mean_kl:.2e})")
