"""realtext and bf16_fidelity (real weights only): natural text through both sides.

- realtext: greedy continuations of harness/parity/realtext.py's PROMPTS, token for token
  against the reference's (a divergence at a near-tie is allowed, as in generate), both sides'
  texts recorded; and the perplexity of data/realtext/perplexity.txt, ours against the
  reference's, within the dtype's perplexity_rel bound (contract/bounds.py).
- bf16_fidelity (bfloat16): the mean KL of our bf16 logits of that text to the fp32
  reference's, at most BF16_KL_FACTOR times transformers' own bf16 KL to it.
"""

from pathlib import Path

import numpy as np
import pytest

from contract.bounds import BF16_KL_FACTOR
from gemma3.generation.loop import generate
from harness.parity import realtext
from harness.parity.greedy import greedy_parity
from harness.reference.store import load_meta

pytestmark = pytest.mark.real_weights_only


@pytest.fixture(scope="session")
def text_run(model, reference) -> tuple[np.ndarray, np.ndarray]:
    """Ours on the perplexity text (as the reference tokenized it): the next-token log-probs
    [T-1] and the logits at the KL positions [K, V]; the full [T, V] logits are not kept, so
    the memory check's peak grows by little."""
    ids = reference["text_ids"]
    logits = np.asarray(model(ids[None].astype(np.int32)), np.float32)[0]
    return (realtext.next_token_logprobs(logits, ids),
            logits[realtext.kl_positions(len(ids))].copy())


@pytest.fixture(scope="session")
def tokenizer(run):
    """gemma3's own tokenizer of the checkpoint, to decode our continuations."""
    from gemma3.inputs.tokenizer import Tokenizer

    path = Path(run["checkpoint"])
    return Tokenizer.from_gguf(path) if path.suffix == ".gguf" else Tokenizer.from_directory(path)


def test_realtext(model, reference, text_run, tokenizer, limits, case, run, record):
    tie = limits.tie_rel * float(np.abs(reference["text_kl_logits"]).max())
    runs, ours = _continuations(model, reference, tie)
    logprobs = text_run[0]
    mine, theirs = realtext.perplexity(logprobs), realtext.perplexity(reference["text_logprobs"])
    texts = load_meta(Path(run["reference_dirs"][case.dtype]))["realtext"]
    steps = [r.first_divergent_step for r in runs]
    ours_texts = [tokenizer.decode(t, skip_special_tokens=True) for t in ours]
    problems = record(
        {"perplexity": mine, "reference_perplexity": theirs,
         "perplexity_rel_diff": abs(mine / theirs - 1), "text_tokens": len(logprobs) + 1,
         "prompts": len(runs), "identical_texts": sum(s is None for s in steps),
         "near_tie_divergences": sum(len(r.divergences) - len(r.confident) for r in runs),
         "confident_divergences": sum(len(r.confident) for r in runs)},
        {"prompts": texts["prompts"], "ours": ours_texts, "reference": texts["reference"]})
    confident = [(i, r.confident[0]) for i, r in enumerate(runs) if r.confident]
    assert not confident, (
        f"{case.id}: greedy text diverged from transformers where its top-1 margin is above "
        f"the near-tie bound: " + "; ".join(
            f"prompt {realtext.PROMPTS[i]!r} at step {d.step} (ours {d.ours}, reference "
            f"{d.reference}, margin {d.margin:.3g})" for i, d in confident))
    assert not problems, (f"{case.id}: perplexity of the real text {mine:.4f} vs the "
                          f"reference's {theirs:.4f}: " + "; ".join(problems))


def _continuations(model, reference, tie: float):
    """Tie-aware parity per prompt, and our own unforced continuation (the tokens to show)."""
    runs, ours = [], []
    for row, length in enumerate(reference["rt_prompt_lens"]):
        prompt = reference["rt_prompt_ids"][row:row + 1, :length].astype(np.int32)
        tokens, margins = reference["rt_tokens"][row], reference["rt_margin"][row]
        parity = greedy_parity(model, prompt, tokens, margins, tie)
        runs.append(parity)
        # Identical to the reference's: those are our tokens too; else generate ours once more.
        ours.append(tokens if parity.first_divergent_step is None else
                    generate(model, prompt, max_new_tokens=len(tokens))[0])
    return runs, [[int(t) for t in row if t != 0] for row in ours]


@pytest.mark.bfloat16_only
def test_bf16_fidelity(reference, text_run, case, run, record):
    fp32_dir = run["reference_dirs"].get("float32")
    if fp32_dir is None:
        pytest.skip(reason="needs the float32 reference outputs: run both dtypes "
                           "(--dtypes float32,bfloat16)")
    fp32 = {name: np.load(Path(fp32_dir) / f"{name}.npy")  # only what this check compares
            for name in ("text_ids", "text_kl_logits")}
    assert np.array_equal(fp32["text_ids"], reference["text_ids"]), "tokenizations differ"
    positions = realtext.kl_positions(len(reference["text_ids"]))
    ours = realtext.mean_kl(fp32["text_kl_logits"], text_run[1])
    theirs = realtext.mean_kl(fp32["text_kl_logits"], reference["text_kl_logits"])
    # Both 0 (no rounding at all) is a ratio of 0: as faithful as transformers.
    ratio = ours / theirs if theirs else (0.0 if ours == 0 else None)
    problems = record({"kl_to_fp32": ours, "reference_kl_to_fp32": theirs, "kl_ratio": ratio,
                       "positions": len(positions)})
    assert not problems, (
        f"{case.id}: our bf16 logits of the real text are further from the fp32 reference "
        f"(mean KL {ours:.3g}) than {BF16_KL_FACTOR}x transformers' own bf16 "
        f"({theirs:.3g})")
