"""The two kinds of decoder layer and Gemma 3's pattern of them."""

from __future__ import annotations

from typing import Literal

LayerType = Literal["sliding_attention", "full_attention"]
SLIDING: LayerType = "sliding_attention"
GLOBAL: LayerType = "full_attention"
KINDS: tuple[LayerType, ...] = (SLIDING, GLOBAL)


def layer_types_from_pattern(num_layers: int, pattern: int = 6) -> tuple[LayerType, ...]:
    """Five local layers then one global, repeated and cut off at num_layers."""
    return tuple(GLOBAL if (i + 1) % pattern == 0 else SLIDING for i in range(num_layers))
