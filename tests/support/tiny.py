"""Small random Gemma 3 checkpoints written by transformers, for parity tests.

The configs keep every quirk of the real ones: >= 7 layers so both layer types appear, a window
shorter than the test sequences, head_dim != sqrt(query_pre_attn_scalar), linear RoPE scaling,
GQA with groups > 1, odd sizes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

TEXT_CONFIG = {
    "vocab_size": 301, "hidden_size": 72, "intermediate_size": 136, "num_hidden_layers": 7,
    "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 20,
    "query_pre_attn_scalar": 30, "sliding_window": 5, "max_position_embeddings": 256,
    "rope_scaling": {"rope_type": "linear", "factor": 4.0},
}


def text_config(**overrides) -> Gemma3TextConfig:
    return Gemma3TextConfig(**{**TEXT_CONFIG, **overrides}, attn_implementation="eager")


POST_NORM_GAIN = 5.0  # sublayer outputs outweigh the current token's embedding


def randomize(model: torch.nn.Module, seed: int, confidence: float = 8.0) -> None:
    """Weights under which the next token depends on the context and predictions are confident.

    The embedding has RMS 1 per coordinate after the sqrt(D) input scale, the same as the
    sublayer outputs, so attention and MLPs shape the residual stream instead of the current
    token dominating it (which makes a model repeat its input). The final norm's weight is
    raised to about `confidence`, so logits have that standard deviation and top-1 margins sit
    far above numerical noise.
    """
    gen = torch.Generator().manual_seed(seed)
    width = model.config.hidden_size
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("model.norm.weight"):
                p.copy_(confidence - 1 + 0.5 * noise)
            elif ".post_" in name:
                p.copy_(POST_NORM_GAIN - 1 + 0.5 * noise)
            elif "norm" in name:
                p.copy_(0.5 * noise)
            elif "embed_tokens" in name:
                p.copy_(noise / width**0.5)
            else:
                p.copy_(noise / p.shape[-1] ** 0.5)  # unit gain per linear layer


def save_text_model(directory: Path, seed: int = 0, **overrides) -> Gemma3ForCausalLM:
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(text_config(**overrides)).eval()
    randomize(model, seed)
    model.save_pretrained(directory)
    return model


def random_ids(shape, vocab: int, seed: int = 0) -> np.ndarray:
    # Avoid ids 0-2 (pad/eos/bos) so nothing special happens to them.
    return np.random.RandomState(seed).randint(3, vocab, shape)
