"""What a Gemma 3 model is: the config classes and the released sizes, config.json read and
checked, the special tokens, the layer types and the dtypes. Pure Python: no jax here.

The public names are re-exported here (`from gemma3.config import Gemma3Config, GLOBAL`)."""

from gemma3.config.configs import Gemma3Config, RopeConfig, TextConfig, VisionConfig
from gemma3.config.dtypes import DTYPES, resolve_dtype
from gemma3.config.errors import InputError
from gemma3.config.hf_json import ConfigError
from gemma3.config.layer_types import GLOBAL, SLIDING, LayerType, layer_types_from_pattern
from gemma3.config.special_tokens import (
    BOI_ID,
    BOS_ID,
    END_OF_TURN_ID,
    EOI_ID,
    EOS_ID,
    IMAGE_TOKEN_ID,
    NEWLINES_ID,
    PAD_ID,
    START_OF_TURN_ID,
)

__all__ = [
    "BOI_ID", "BOS_ID", "DTYPES", "END_OF_TURN_ID", "EOI_ID", "EOS_ID", "GLOBAL", "IMAGE_TOKEN_ID",
    "NEWLINES_ID", "PAD_ID", "SLIDING", "START_OF_TURN_ID", "ConfigError", "Gemma3Config",
    "InputError",
    "LayerType", "RopeConfig", "TextConfig", "VisionConfig", "layer_types_from_pattern",
    "resolve_dtype",
]
