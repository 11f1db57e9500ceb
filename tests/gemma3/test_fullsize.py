"""One full-size check in the default run: the 270m in the hub layout (one 0.5 GB bf16
`model.safetensors`, written by the harness's synthetic writer and cached across runs), its
logits for a short prompt in float32 from gemma3 and from transformers.

Measured (CPU): max |diff| 1.0-1.3e-4 on logits of scale ~43, i.e. 2-3e-6 of the scale, KL
~1e-10, top-1 agreement 1.0; the bound 2e-5 of the scale leaves ~8x headroom while a wrong
window, RoPE form, norm or scale moves logits by 1e-2 of the scale or more.
"""

import numpy as np
import pytest
import torch
from transformers import Gemma3ForCausalLM

import gemma3
from harness.checkpoints import registry, synthetic
from harness.parity import metrics
from harness.parity.prompts import make_prompts

PROMPT_TOKENS = 16
BOUND = 2e-5


@pytest.fixture(scope="module")
def checkpoint(request, tmp_path_factory):
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("gemma3-harness") if cache else tmp_path_factory.mktemp("fullsize")
    return synthetic.ensure_checkpoint(registry.get("gemma-3-270m"), 0, root)


def test_270m_hub_layout_logits_match_transformers(checkpoint):
    ids = make_prompts(registry.get("gemma-3-270m").config()).logits[:, :PROMPT_TOKENS]
    reference = Gemma3ForCausalLM.from_pretrained(checkpoint, dtype=torch.float32,
                                                  attn_implementation="eager").eval()
    with torch.no_grad():
        ref = reference(torch.tensor(ids, dtype=torch.long)).logits[0].numpy()
    del reference
    model = gemma3.from_pretrained(checkpoint, dtype="float32")
    assert model.config.num_params() == 268_098_176
    ours = np.asarray(model(ids), np.float32)[0]
    stats = metrics.compare_logits(ours, ref, tie_rel=1e-4)
    print(f"270m fp32: max |diff| {stats.max_abs_diff:.2e} = {stats.max_abs_rel:.1e} of the "
          f"scale {stats.scale:.1f}; mean KL {stats.mean_kl:.1e}; median top-1 margin "
          f"{stats.median_top1_margin:.2f}")
    assert stats.max_abs_rel < BOUND
    assert stats.top1_agreement == 1.0
    assert stats.mean_kl < 1e-8
