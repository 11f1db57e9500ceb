"""Generation: the compiled prefill and decode loop (`generate`) and the sampling strategies."""
