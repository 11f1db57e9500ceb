"""Gemma 3 in pure JAX (Flax NNX)."""

from gemma3.config import Gemma3Config, TextConfig, VisionConfig
from gemma3.loading import from_pretrained
from gemma3.model import Gemma3

__all__ = ["Gemma3", "Gemma3Config", "TextConfig", "VisionConfig", "from_pretrained"]
