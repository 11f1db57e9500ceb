"""The text decoder against transformers' Gemma3ForCausalLM, both loading the same files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gemma3
from tests.support.tiny import TEXT_CONFIG, random_ids, save_text_model

VOCAB = TEXT_CONFIG["vocab_size"]
SEQ = 23  # longer than the window (5) so sliding layers really slide


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_text")
    save_text_model(directory, seed=0)
    return directory


def reference_logits(directory, ids, dtype, attention_mask=None):
    model = gemma3_reference(directory, dtype)
    kwargs = {}
    if attention_mask is not None:
        # generate()'s positions, passed explicitly so both sides rotate the same angles.
        positions = np.maximum(attention_mask.cumsum(-1) - 1, 0)
        kwargs = {"attention_mask": torch.tensor(attention_mask),
                  "position_ids": torch.tensor(positions)}
    with torch.no_grad():
        return model(torch.tensor(ids), **kwargs).logits.float().numpy()


def gemma3_reference(directory, dtype):
    from transformers import Gemma3ForCausalLM

    return Gemma3ForCausalLM.from_pretrained(directory, dtype=dtype,
                                             attn_implementation="eager").eval()


def assert_fp32_close(out, ref):
    """fp32 parity, relative to the logit scale."""
    worst = np.abs(out - ref).max() / np.abs(ref).max()
    print(f"fp32: max |diff| / max |logit| = {worst:.2e}")
    # Measured 1.3e-6 to 1.8e-6 over 6 seeds (fp32 rounding, another summation order). A wrong
    # window, RoPE form, norm order or scale gives errors of order 1e-2 and above.
    assert worst < 5e-6


def test_fp32_logits_match(checkpoint):
    ids = random_ids((2, SEQ), VOCAB)
    ref = reference_logits(checkpoint, ids, torch.float32)
    out = np.asarray(gemma3.from_pretrained(checkpoint, dtype="float32")(ids))
    assert_fp32_close(out, ref)


def test_bf16_logits_match(checkpoint):
    ids = random_ids((2, SEQ), VOCAB, seed=1)
    ref = reference_logits(checkpoint, ids, torch.bfloat16)
    exact = reference_logits(checkpoint, ids, torch.float32)
    out = np.asarray(gemma3.from_pretrained(checkpoint, dtype="bfloat16")(ids), np.float32)
    scale = np.abs(exact).max()
    ours, theirs = np.abs(out - exact).max(), np.abs(ref - exact).max()
    agreement = (out.argmax(-1) == ref.argmax(-1)).mean()
    print(f"bf16: max |diff| to transformers bf16 {np.abs(out - ref).max() / scale:.4f} of the "
          f"logit scale; to fp32: ours {ours / scale:.4f}, transformers' {theirs / scale:.4f}; "
          f"top-1 agreement {agreement:.3f}")
    # Over 6 seeds we measured 2.7-4.6% of the logit scale against transformers' bf16, the
    # same size as either side's distance to fp32 (bf16 keeps 8 mantissa bits and XLA and
    # oneDNN round differently), and top-1 agreement >= 0.957 (misses are near-ties).
    assert np.abs(out - ref).max() < 0.08 * scale
    assert ours < 2 * theirs  # no further from the exact result than transformers' own bf16
    assert agreement >= 0.9


def test_left_padded_batch_matches_reference_and_unpadded_rows(checkpoint):
    ids = random_ids((2, SEQ), VOCAB, seed=2)
    mask = np.ones_like(ids)
    mask[1, :7] = 0  # row 1 is a shorter prompt, left-padded
    ref = reference_logits(checkpoint, ids, torch.float32, attention_mask=mask)
    model = gemma3.from_pretrained(checkpoint, dtype="float32")
    out = np.asarray(model(ids, attention_mask=mask))
    real = mask.astype(bool)  # outputs at pad queries are garbage on both sides
    assert_fp32_close(out[real], ref[real])
    alone = np.asarray(model(ids[1:, 7:]))
    assert_fp32_close(out[1, 7:], alone[0])


def test_hidden_states_match_reference_layer_by_layer(checkpoint):
    ids = random_ids((1, SEQ), VOCAB, seed=3)
    ref_model = gemma3_reference(checkpoint, torch.float32)
    with torch.no_grad():
        ref = ref_model(torch.tensor(ids), output_hidden_states=True).hidden_states
    _, hidden = gemma3.from_pretrained(checkpoint, dtype="float32")(ids, return_hidden_states=True)
    assert len(hidden) == len(ref) == TEXT_CONFIG["num_hidden_layers"] + 1
    for layer, (ours, theirs) in enumerate(zip(hidden[:-1], ref[:-1])):
        theirs = theirs.numpy()
        error = np.abs(np.asarray(ours) - theirs).max() / np.abs(theirs).max()
        # Measured up to 3.5e-6 of each layer's scale; a wrong layer is off by 1e-2 or more.
        assert error < 1e-5, f"layer {layer}: max |diff| is {error:.1e} of its scale"
