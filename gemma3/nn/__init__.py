"""The network: Gemma 3's Flax NNX modules (decoder, attention, KV cache, masks, RoPE, SigLIP,
projector) and the checks of the arrays its forward and generate() take."""
