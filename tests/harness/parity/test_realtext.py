"""The real-text measures: next-token log-probabilities, perplexity, the KL positions, caps."""

import numpy as np

from harness.parity import realtext


def test_next_token_logprobs_against_a_direct_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (37, 11)).astype(np.float32)  # 37 rows: more than one chunk
    ids = rng.integers(0, 11, 37)
    probs = np.exp(logits.astype(np.float64))
    probs /= probs.sum(-1, keepdims=True)
    expected = np.log(probs[np.arange(36), ids[1:]])
    np.testing.assert_allclose(realtext.next_token_logprobs(logits, ids), expected, rtol=1e-12)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    logits, ids = np.zeros((9, 5), np.float32), np.arange(9) % 5
    assert np.isclose(realtext.perplexity(realtext.next_token_logprobs(logits, ids)), 5.0)


def test_kl_positions_and_text_caps():
    assert realtext.kl_positions(10).tolist() == [0, 4, 8]
    assert realtext.capped(["x" * 5000, "y"]) == ["x" * realtext.MAX_TEXT_CHARS, "y"]


def test_the_inputs_are_fixed_and_in_the_cache_key():
    assert 150 < len(realtext.text().split()) < 400 and "def " in realtext.text()
    assert realtext.digest() == realtext.digest() and len(realtext.digest()) == 64


def test_the_reference_loads_a_gguf_file_through_transformers_own_gguf_support(tmp_path):
    from harness.reference import transformers_run as reference

    gguf_file = tmp_path / "model.gguf"
    assert reference._hf_location(gguf_file) == ((tmp_path,), {"gguf_file": "model.gguf"})
    assert reference._hf_location(tmp_path) == ((tmp_path,), {})


def test_real_text_outputs_only_for_real_sources():
    from harness.reference.transformers_run import is_real

    assert not is_real("synthetic:gemma-3-270m:0:w1")
    assert is_real("local:" + "0" * 64) and is_real("gguf:" + "0" * 64)
