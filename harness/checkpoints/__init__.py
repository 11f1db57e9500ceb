"""The weights a model runs on: the registry of models and their hub layout, synthetic
checkpoints written in that layout, real ones resolved and named by content (local, hub, GGUF),
and the digests that name them."""
