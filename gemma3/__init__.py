"""Gemma 3 in pure JAX (Flax NNX).

    model = gemma3.from_pretrained("google/gemma-3-1b-it", dtype="bfloat16")  # or "model.gguf"
    logits = model(input_ids, attention_mask=mask)
    tokens = gemma3.generate(model, input_ids, attention_mask=mask, max_new_tokens=32)
"""

from __future__ import annotations

import importlib

# Public names and the module each comes from. They are imported on first use (PEP 562), so
# `import gemma3.cli` does not import jax before the command line has set up its signal handling.
_EXPORTS = {
    "Gemma3Config": "gemma3.config", "TextConfig": "gemma3.config",
    "VisionConfig": "gemma3.config", "generate": "gemma3.generation.loop",
    "from_pretrained": "gemma3.ckpt.loading", "Gemma3": "gemma3.nn.model",
    "Greedy": "gemma3.generation.sampling", "Temperature": "gemma3.generation.sampling",
    "TopK": "gemma3.generation.sampling", "TopP": "gemma3.generation.sampling",
}
# Public modules, under the short names the documentation uses (`gemma3.gguf.read_config`,
# `from gemma3 import sharding`, `gemma3.images.preprocess`).
_MODULES = {"gguf": "gemma3.ckpt.gguf", "sharding": "gemma3.runtime.sharding",
            "images": "gemma3.inputs.images"}

__all__ = ["Gemma3", "Gemma3Config", "Greedy", "Temperature", "TextConfig", "TopK", "TopP",
           "VisionConfig", "from_pretrained", "generate", "gguf", "images", "sharding"]


def __getattr__(name: str):
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:  # a subpackage (gemma3.ckpt, ...), as an import statement would give it
        try:
            return importlib.import_module(f"gemma3.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"gemma3.{name}":
                raise
            raise AttributeError(f"module 'gemma3' has no attribute {name!r}") from None
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_MODULES])
