"""Real-text checks: inputs and pure measures shared by the reference and the JAX side.

On real weights (released or quantized) random token ids say little about the model, so the
harness also feeds natural text: greedy continuations of PROMPTS (both sides' texts are
recorded), the perplexity of data/realtext/perplexity.txt, and in bfloat16 how far each side's
bf16 logits of that text are from the fp32 reference (mean KL). The reference tokenizes (its
tokenizer is the reference's), so both sides see the same ids.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from harness.parity.metrics import CHUNK_ROWS, kl_rows, log_softmax

DATA = Path(__file__).parents[1] / "data" / "realtext"
PROMPTS = (
    "def fibonacci(n):",
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "Photosynthesis is the process by which",
)
NEW_TOKENS = 30
KL_STRIDE = 4  # positions of the text whose full logits are kept for the bf16 KL (disk: [T/4, V])
MAX_TEXT_CHARS = 2000  # per recorded text (the result schema's cap)


def text() -> str:
    return (DATA / "perplexity.txt").read_text("utf-8")


def digest() -> str:
    """Part of the reference cache key: the prompts, the text and the generation length."""
    h = hashlib.sha256()
    for part in (*PROMPTS, text(), str(NEW_TOKENS), str(KL_STRIDE)):
        h.update(part.encode("utf-8") + b"\0")
    return h.hexdigest()


def kl_positions(length: int) -> np.ndarray:
    """The text positions (of `length` ids) whose full logits the bf16 KL compares."""
    return np.arange(0, length, KL_STRIDE)


def next_token_logprobs(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """log p(ids[t+1] | ids[:t+1]) for t < T-1; logits [T, V], ids [T]; float64."""
    predicting, targets = logits[:-1], ids[1:]
    out = np.empty(len(targets))
    for start in range(0, len(out), CHUNK_ROWS):  # [CHUNK_ROWS, V] in float64 at a time
        rows = log_softmax(predicting[start:start + CHUNK_ROWS])
        out[start:start + len(rows)] = rows[np.arange(len(rows)), targets[start:start + len(rows)]]
    return out


def perplexity(logprobs: np.ndarray) -> float:
    return float(np.exp(-np.mean(logprobs)))


def mean_kl(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean over rows of KL(reference || other), nats."""
    return float(kl_rows(reference, other).mean())


def capped(texts: list[str]) -> list[str]:
    return [t[:MAX_TEXT_CHARS] for t in texts]
