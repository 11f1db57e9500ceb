"""Gemma 3 in pure JAX (Flax NNX).

    model = gemma3.from_pretrained("google/gemma-3-1b-it", dtype="bfloat16")  # or "model.gguf"
    logits = model(input_ids, attention_mask=mask)
    tokens = gemma3.generate(model, input_ids, attention_mask=mask, max_new_tokens=32)
"""

from gemma3 import gguf  # gemma3.gguf.read_config / tensor_types; the gguf package loads lazily
from gemma3.config import Gemma3Config, TextConfig, VisionConfig
from gemma3.generation import generate
from gemma3.loading import from_pretrained
from gemma3.model import Gemma3
from gemma3.sampling import Greedy, Temperature, TopK, TopP

__all__ = ["Gemma3", "Gemma3Config", "Greedy", "Temperature", "TextConfig", "TopK", "TopP",
           "VisionConfig", "from_pretrained", "generate", "gguf"]
