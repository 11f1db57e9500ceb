"""Tiny random multimodal Gemma 3 checkpoints and helpers shared by the image-path tests.

The transformers model is the reference (eager attention, fp32 unless asked); every parameter is
re-drawn from a seeded normal so that norms, biases and the projector are not at their
trivial initial values.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Gemma3Config as HFConfig
from transformers import Gemma3ForConditionalGeneration

from gemma3.config import Gemma3Config

# Small ids; as in the released 262208-row tables, the image soft token has its own row (320)
# near the end of the vocabulary (its row is overwritten by image features anyway).
VOCAB, BOI, EOI, IMAGE, NEWLINES = 330, 300, 301, 320, 108
TOKENS_PER_IMAGE = 16  # 8x8 patches pooled 2x2 -> 4x4
IMAGE_SIZE = 56
SLIDING_WINDOW = 6  # shorter than an image block, so blocks cross windows


def hf_config() -> HFConfig:
    text = {
        "vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 7,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "query_pre_attn_scalar": 24, "sliding_window": SLIDING_WINDOW,
        "max_position_embeddings": 256,
        "rope_parameters": {
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}},
    }
    vision = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
              "num_attention_heads": 4, "image_size": IMAGE_SIZE, "patch_size": 7,
              "vision_use_head": False}
    return HFConfig(text_config=text, vision_config=vision, mm_tokens_per_image=TOKENS_PER_IMAGE,
                    image_token_index=IMAGE, boi_token_index=BOI, eoi_token_index=EOI)


def hf_model(seed: int = 0) -> Gemma3ForConditionalGeneration:
    """A fresh fp32 reference model with every parameter drawn from N(0, 0.1^2)
    (LayerNorm scales around 1)."""
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(hf_config()).eval()
    model.config._attn_implementation = "eager"
    for config in (model.config.text_config, model.config.vision_config):
        config._attn_implementation = "eager"
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.1
            is_layer_norm = "vision_tower" in name and ("layer_norm" in name or "layernorm" in name)
            p.copy_(noise + 1.0 if is_layer_norm and name.endswith("weight") else noise)
    return model


def our_config(model: Gemma3ForConditionalGeneration) -> Gemma3Config:
    return Gemma3Config.from_hf_config(model.config.to_dict())


def random_pixels(n: int, seed: int = 0) -> np.ndarray:
    """[n, 3, S, S] float32 in [-1, 1], as the processor returns."""
    return np.random.default_rng(seed).uniform(-1, 1, (n, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(
        np.float32)


def image_block(n: int = TOKENS_PER_IMAGE) -> list[int]:
    return [NEWLINES, BOI, *[IMAGE] * n, EOI, NEWLINES]


def two_image_batch() -> tuple[np.ndarray, np.ndarray]:
    """Row 0: text, image 1, text, image 2, text. Row 1: left padding, text, image 3, text.
    Returns input_ids and attention_mask, both [2, T]."""
    row0 = [2, 10, 11, *image_block(), 12, 13, 14, *image_block(), 15, 16, 17]
    row1 = [2, 20, *image_block(), 21, 22, 23, 24]
    pad = len(row0) - len(row1)
    ids = np.array([row0, [0] * pad + row1], np.int64)
    mask = np.array([[1] * len(row0), [0] * pad + [1] * len(row1)], np.int64)
    return ids, mask


def token_types(ids: np.ndarray) -> np.ndarray:
    return (ids == IMAGE).astype(np.int64)


def positions(mask: np.ndarray) -> np.ndarray:
    """cumsum(mask) - 1 with pads at 0, as generate() and our model derive them."""
    return np.where(mask > 0, np.cumsum(mask, axis=-1) - 1, 0)
