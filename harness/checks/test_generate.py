"""generate: greedy decoding crossing the sliding window, token for token against transformers'
generate(do_sample=False). A divergence where the reference's top-1 margin is within the
dtype's noise is a near-tie: recorded, then decoding resumes from the reference's tokens."""


def test_generate(greedy, prompts, case, record):
    near = [d for d in greedy.divergences if d.near_tie]
    problems = record({"first_divergent_step": greedy.first_divergent_step,
                       "near_tie_divergences": len(near),
                       "confident_divergences": len(greedy.confident),
                       "restarts_exhausted": greedy.restarts_exhausted,
                       "steps": greedy.steps, "prompt_tokens": prompts.generate.shape[1],
                       "first_divergence_margin": greedy.divergences[0].margin
                       if greedy.divergences else None})
    assert not greedy.confident, (
        f"{case.id}: greedy decoding diverged from transformers at step "
        f"{greedy.confident[0].step} (ours {greedy.confident[0].ours}, reference "
        f"{greedy.confident[0].reference}) where the reference's top-1 margin "
        f"{greedy.confident[0].margin:.3g} is above the near-tie bound; near-ties before it: "
        f"{[d.step for d in near]}")
    assert not greedy.restarts_exhausted, (
        f"{case.id}: {len(near)} near-tie divergences at steps {[d.step for d in near]}; "
        "more than the harness resumes after, so the rest was not compared")
    assert not problems, f"{case.id}: " + "; ".join(problems)
