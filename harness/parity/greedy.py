"""Greedy generation parity that is not decided by ties.

JAX generates from the prompt; at the first step where its token differs from the reference's,
the reference's top-1 margin there says whether that was a near-tie (below the dtype's noise
bound: either token is right) or a real divergence. After a near-tie, generation restarts from
the prompt plus the reference's tokens up to and including that step, so the whole reference
continuation, across the sliding window, is still checked; every near-tie is recorded.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gemma3.generation.loop import Timings, generate
from harness.parity.metrics import first_divergence

MAX_RESTARTS = 6


@dataclasses.dataclass(frozen=True)
class Divergence:
    step: int
    ours: int
    reference: int
    margin: float  # the reference's top-1 margin at that step
    near_tie: bool


@dataclasses.dataclass
class GreedyRun:
    steps: int
    divergences: list[Divergence]
    timings: Timings  # of the first, unforced generation
    restarts_exhausted: bool = False

    @property
    def first_divergent_step(self) -> int | None:
        return self.divergences[0].step if self.divergences else None

    @property
    def confident(self) -> list[Divergence]:
        return [d for d in self.divergences if not d.near_tie]


def greedy_parity(model, prompt: np.ndarray, ref_tokens: np.ndarray, ref_margin: np.ndarray,
                  tie: float) -> GreedyRun:
    """prompt [1, T]; ref_tokens, ref_margin [N]; tie: absolute near-tie bound (logits)."""
    n, start, divergences, first_timings = len(ref_tokens), 0, [], Timings()
    while start < n:
        ids = np.concatenate([prompt[0], ref_tokens[:start]]).astype(np.int32)[None]
        timings = first_timings if start == 0 else Timings()
        # Always n new tokens: the same compiled decode loop serves every restart.
        ours = generate(model, ids, max_new_tokens=n, timings=timings)[0, :n - start]
        k = first_divergence(ours, ref_tokens[start:])
        if k is None:
            break
        step = start + k
        margin = float(ref_margin[step])
        divergences.append(Divergence(step, int(ours[k]), int(ref_tokens[step]), margin,
                                      margin < tie))
        if margin >= tie:
            break
        if len(divergences) > MAX_RESTARTS:
            return GreedyRun(n, divergences, first_timings, restarts_exhausted=True)
        start = step + 1
    return GreedyRun(n, divergences, first_timings)
