"""Pure comparisons of JAX outputs with the reference's: logits, greedy tokens, hidden states."""

from __future__ import annotations

import dataclasses

import numpy as np

CHUNK_ROWS = 16  # rows of [V] logits converted to float64 at a time (KL needs the precision)


def top1_margins(logits: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 logit, per row of [..., V]."""
    top2 = np.partition(logits, -2, axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def log_softmax(x: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64."""
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def kl_rows(ref: np.ndarray, ours: np.ndarray) -> np.ndarray:
    """KL(ref || ours) in nats for each row of [N, V]."""
    out = np.empty(len(ref))
    for start in range(0, len(ref), CHUNK_ROWS):
        p = log_softmax(ref[start:start + CHUNK_ROWS])
        q = log_softmax(ours[start:start + CHUNK_ROWS])
        out[start:start + CHUNK_ROWS] = np.maximum((np.exp(p) * (p - q)).sum(-1), 0.0)
    return out


@dataclasses.dataclass(frozen=True)
class LogitStats:
    max_abs_diff: float
    scale: float  # max |reference logit|
    mean_kl: float
    max_kl: float
    top1_agreement: float
    median_top1_margin: float
    confident_misses: int  # top-1 differs where the reference margin is above the tie bound
    positions: int

    @property
    def max_abs_rel(self) -> float:
        return self.max_abs_diff / self.scale if self.scale else float("inf")

    def measurements(self) -> dict:
        return {"max_abs_diff": self.max_abs_diff, "max_abs_rel": self.max_abs_rel,
                "logit_scale": self.scale, "mean_kl": self.mean_kl, "max_kl": self.max_kl,
                "top1_agreement": self.top1_agreement,
                "median_top1_margin": self.median_top1_margin,
                "confident_misses": self.confident_misses, "positions": self.positions}


def compare_logits(ours: np.ndarray, ref: np.ndarray, tie_rel: float) -> LogitStats:
    """ours, ref: [N, V] logits at the compared positions (float32)."""
    if ours.shape != ref.shape:
        raise ValueError(f"logits shapes differ: ours {ours.shape}, reference {ref.shape}")
    ours, ref = ours.astype(np.float32), ref.astype(np.float32)
    scale = float(np.abs(ref).max())
    margins = top1_margins(ref)
    agree = ours.argmax(-1) == ref.argmax(-1)
    kl = kl_rows(ref, ours)
    return LogitStats(
        max_abs_diff=float(np.abs(ours - ref).max()), scale=scale,
        mean_kl=float(kl.mean()), max_kl=float(kl.max()),
        top1_agreement=float(agree.mean()), median_top1_margin=float(np.median(margins)),
        confident_misses=int((~agree & (margins > tie_rel * scale)).sum()),
        positions=len(ref))


def first_divergence(ours: np.ndarray, ref: np.ndarray) -> int | None:
    """First step where two token sequences differ, or None."""
    n = min(len(ours), len(ref))
    diff = np.flatnonzero(np.asarray(ours[:n]) != np.asarray(ref[:n]))
    return int(diff[0]) if diff.size else None


@dataclasses.dataclass(frozen=True)
class LayerDrift:
    errors: list[float]  # relative RMS error per hidden state (0 = embeddings)
    first_drift: int | None  # first index above the threshold

    def describe(self) -> str:
        where = ("no layer above the bound" if self.first_drift is None else
                 f"first drift at hidden state {self.first_drift} ("
                 + ("the embeddings" if self.first_drift == 0
                    else f"output of layer {self.first_drift - 1}") + ")")
        shown = ", ".join(f"{i}:{e:.1e}" for i, e in enumerate(self.errors))
        return f"per-layer relative RMS error: {where}; [{shown}]"


def layer_drift(ours: list[np.ndarray], ref: np.ndarray, threshold: float) -> LayerDrift:
    """ours: hidden states [T, D] (embeddings, then each layer's output); ref: [L, T, D]."""
    errors = []
    for mine, theirs in zip(ours, ref):
        mine = np.asarray(mine, np.float32).reshape(theirs.shape)
        rms = float(np.sqrt(np.mean(theirs.astype(np.float64) ** 2))) or 1.0
        errors.append(float(np.sqrt(np.mean((mine - theirs) ** 2, dtype=np.float64))) / rms)
    first = next((i for i, e in enumerate(errors) if e > threshold), None)
    return LayerDrift(errors, first)
