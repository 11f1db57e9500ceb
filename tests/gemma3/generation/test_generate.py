"""Generation: greedy parity with transformers' generate(), the windowed cache, sampling, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gemma3
from gemma3.config import Gemma3Config
from gemma3.generation import loop as gen
from gemma3.generation.sampling import Greedy, Temperature, TopK, TopP
from gemma3.nn.cache import cache_bytes
from tests.support.tiny import TEXT_CONFIG, random_ids, save_text_model

VOCAB = TEXT_CONFIG["vocab_size"]
NEW = 40
FP32_NOISE = 1e-4  # logit noise between the two fp32 implementations is ~1e-5 (parity tests)


@pytest.fixture(scope="module", params=[5, 16, 512], ids=lambda w: f"window{w}")
def pair(request, tmp_path_factory):
    """(transformers model, our fp32 model) on the same files. Window 5 and 16 make the sliding
    layers use a ring buffer that wraps during decoding; 512 exceeds the cache (no ring)."""
    directory = tmp_path_factory.mktemp(f"gen{request.param}")
    hf = save_text_model(directory, seed=request.param, sliding_window=request.param)
    return hf, gemma3.from_pretrained(directory, dtype="float32")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """One fp32 model for the tests that do not compare with transformers."""
    directory = tmp_path_factory.mktemp("gen")
    save_text_model(directory, seed=3)
    return gemma3.from_pretrained(directory, dtype="float32")


def reference_generate(hf, ids, mask):
    with torch.no_grad():
        out = hf.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), do_sample=False,
                          max_new_tokens=NEW, min_new_tokens=NEW, pad_token_id=0,
                          eos_token_id=None, output_scores=True, return_dict_in_generate=True)
    scores = torch.stack(out.scores, 1).float().numpy()  # [B, NEW, V]
    return out.sequences[:, ids.shape[1]:].numpy(), scores


def assert_same_greedy(ours, theirs, scores):
    """Same tokens up to the first near-tie; after one, a divergence is legitimate."""
    top2 = np.sort(scores, axis=-1)[..., -2:]
    margins = top2[..., 1] - top2[..., 0]
    for row in range(theirs.shape[0]):
        differ = np.flatnonzero(ours[row] != theirs[row])
        if differ.size == 0:
            continue
        step = differ[0]
        assert margins[row, step] < FP32_NOISE, (
            f"row {row} diverges at step {step} where the reference's top-1 margin is "
            f"{margins[row, step]:.3g}, far above numerical noise")
        print(f"row {row}: near-tie at step {step} (margin {margins[row, step]:.2g}); "
              "tokens compared up to there")


def test_greedy_matches_transformers_beyond_the_window(pair):
    hf, model = pair
    ids = random_ids((1, 11), VOCAB, seed=7)
    mask = np.ones_like(ids)
    theirs, scores = reference_generate(hf, ids, mask)
    ours = gen.generate(model, ids, max_new_tokens=NEW, stop_ids=[])
    assert_same_greedy(ours, theirs, scores)
    assert len(set(theirs[0].tolist())) > 5, "degenerate test model: it repeats one token"


def test_greedy_matches_transformers_on_a_left_padded_batch(pair):
    hf, model = pair
    ids = random_ids((2, 13), VOCAB, seed=8)
    mask = np.ones_like(ids)
    mask[1, :6] = 0
    ids[1, :6] = 0
    theirs, scores = reference_generate(hf, ids, mask)
    ours = gen.generate(model, ids, mask, max_new_tokens=NEW, stop_ids=[])
    assert_same_greedy(ours, theirs, scores)
    alone = gen.generate(model, ids[1:, 6:], max_new_tokens=NEW, stop_ids=[])
    np.testing.assert_array_equal(ours[1], alone[0])  # padding changes nothing


def test_teacher_forced_decode_reproduces_the_full_forward(pair):
    _, model = pair
    ids = random_ids((2, 30), VOCAB, seed=9)
    mask = np.ones_like(ids)
    mask[0, :3] = 0
    full = np.asarray(model(ids, attention_mask=mask))
    prompt = 8
    logits, cache = gen.prefill(model, ids[:, :prompt], mask[:, :prompt], cache_length=64)
    steps = [np.asarray(logits)]
    positions = mask[:, :prompt].sum(1)
    for t in range(prompt, ids.shape[1] - 1):
        step_positions = (positions + t - prompt)[:, None]
        logits, cache = gen.decode_step(model, ids[:, t:t + 1], step_positions, cache)
        steps.append(np.asarray(logits))
    decoded = np.stack(steps, axis=1)
    expected = full[:, prompt - 1:-1]
    # Measured ~1e-6 of the logit scale: the same fp32 math in another order.
    assert np.abs(decoded - expected).max() < 1e-5 * np.abs(expected).max()


def test_stop_ids_end_each_row_and_pad_after(model):
    ids = random_ids((2, 9), VOCAB, seed=10)
    free = gen.generate(model, ids, max_new_tokens=12, stop_ids=[])
    stop = int(free[0, 3])
    out = gen.generate(model, ids, max_new_tokens=12, stop_ids=[stop])
    for row in range(2):
        hits = np.flatnonzero(free[row] == stop)
        end = hits[0] + 1 if hits.size else 12
        np.testing.assert_array_equal(out[row, :end], free[row, :end])
        assert (out[row, end:] == 0).all()


def test_prompt_lengths_in_one_bucket_share_compiled_programs(model):
    gen.generate(model, random_ids((1, 10), VOCAB), max_new_tokens=4)
    compiled = len(gen._COMPILED)
    gen.generate(model, random_ids((1, 17), VOCAB), max_new_tokens=4)
    assert len(gen._COMPILED) == compiled


def test_cache_length_is_kept_exactly(model):
    ids = random_ids((1, 10), VOCAB, seed=12)
    assert gen.bucket_sizes(10, 8, cache_length=24) == (16, 64, 24)  # the prompt pads to 16
    np.testing.assert_array_equal(
        gen.generate(model, ids, max_new_tokens=8, stop_ids=[], cache_length=24),
        gen.generate(model, ids, max_new_tokens=8, stop_ids=[]))


def test_samplers(model):
    ids = random_ids((1, 9), VOCAB, seed=11)
    greedy = gen.generate(model, ids, max_new_tokens=8, stop_ids=[])
    for sampler in [TopK(1), TopP(1e-6), Temperature(1e-4)]:
        np.testing.assert_array_equal(gen.generate(model, ids, max_new_tokens=8, stop_ids=[],
                                                   sampler=sampler), greedy)
    # Another p or temperature reuses the compiled loop (they are data, not constants).
    a, b, c = (gen.generate(model, ids, max_new_tokens=8, stop_ids=[], sampler=TopP(0.9, 2.0),
                            seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)  # seeded
    assert not np.array_equal(a, c)


def test_top_k_and_top_p_keep_to_their_sets():
    import jax

    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], np.float32))
    keys = jax.random.split(jax.random.key(0), 200)
    top_k = {int(TopK(2)(logits, k)[0]) for k in keys}
    top_p = {int(TopP(0.7)(logits, k)[0]) for k in keys}
    assert top_k == {0, 1} and top_p == {0, 1}  # 0.5 + 0.3 reaches 0.7


@pytest.mark.parametrize(
    "ids, kwargs, message",
    [
        (np.zeros((1, 0), int), {}, "non-empty"),
        (np.array([[5, 6]]), {"attention_mask": np.array([[0, 0]])}, r"row\(s\) \[0\] are empty"),
        (np.array([[5, VOCAB]]), {}, f"token id {VOCAB} is outside the vocabulary"),
        (np.array([[5, 6]]), {"max_new_tokens": 0}, "max_new_tokens must be >= 1"),
        (np.array([[5] * 250]), {"max_new_tokens": 10}, "exceeds the model's max_position"),
        (np.array([[5] * 20]), {"cache_length": 24}, "does not fit cache_length 24"),
    ],
)
def test_bad_input(model, ids, kwargs, message):
    kwargs = {"max_new_tokens": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        gen.generate(model, ids, **kwargs)


def test_public_api_and_greedy_default():
    assert gemma3.generate is gen.generate  # design.md: gemma3.generate(model, input_ids, ...)
    assert gen.generate.__kwdefaults__["sampler"] is None and Greedy()(np.eye(3), None)[2] == 2


def test_cache_is_windowed_for_the_1b_at_32k():
    cfg = Gemma3Config.gemma3_1b().text
    length, itemsize = 32_768, 2
    per_position = 2 * cfg.num_key_value_heads * cfg.head_dim * itemsize  # keys and values
    n_global = len(cfg.global_layers)  # 4 of 26
    windowed = per_position * (n_global * length + (26 - n_global) * cfg.sliding_window)
    full = per_position * 26 * length
    assert cache_bytes(cfg, 1, length, "bfloat16") == windowed == 145_752_064
    assert full / windowed == pytest.approx(5.99, abs=0.01)
