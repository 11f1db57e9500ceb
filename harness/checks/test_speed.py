"""speed: prefill and decode tokens/s of the generate check's first (unforced) generation;
recorded, not bounded (only that tokens came out). Compile time is measured apart and left out
of the rates."""


def test_speed(greedy, record):
    t = greedy.timings
    problems = record({
        "prefill_tokens_per_s": t.prompt_tokens / t.prefill if t.prefill else None,
        "decode_tokens_per_s": (t.new_tokens - 1) / t.decode if t.decode else None,
        "prefill_seconds": t.prefill, "decode_seconds": t.decode,
        "prefill_compile_seconds": t.prefill_compile, "decode_compile_seconds": t.decode_compile,
        "prompt_tokens": t.prompt_tokens, "new_tokens": t.new_tokens})
    assert not problems, "the generation produced no tokens: " + "; ".join(problems)
