"""The measures of the checks: the fixed prompts both sides see, the comparisons of logits,
tokens and hidden states, tie-aware greedy parity, the real-text inputs and measures."""
