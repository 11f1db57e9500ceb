"""Checkpoints: the readers (safetensors, GGUF), the weight map and its bijection check, the hub,
the placer that puts tensors on devices, and `from_pretrained`, the one loader that drives them."""
