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
    record(stats.measurements())
    assert stats.max_abs_rel <= limits.max_abs_rel and stats.confident_misses == 0, (
        f"{case.id}: logits after the image differ from transformers: max |diff| "
        f"{stats.max_abs_rel:.2e} of the scale (bound {limits.max_abs_rel:.0e}), "
        f"{stats.confident_misses} confident top-1 misses, mean KL {stats.mean_kl:.2e}")
