"""The fixed inputs every check feeds to both sides: seeded random token ids (no tokenizer is
needed, and parity does not care whether a prompt reads well), sized from the config.

- logits: one prompt of LOGITS_TOKENS tokens;
- generate: a prompt of window - 8 tokens and GENERATE_TOKENS (24) new ones, so greedy decoding
  crosses the sliding window (512 for 270m/1b, 1024 for 4b and up);
- batch: two prompts of different lengths, the shorter left-padded, then BATCH_TOKENS new ones;
- multimodal (4b and up): text, one image block (boi, 256 image tokens, eoi) and text, with
  seeded pixel_values in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from gemma3.config import NEWLINES_ID, Gemma3Config
from gemma3.config.special_tokens import BOS_ID, FIRST_TEXT_ID, LAST_TEXT_ID

LOGITS_TOKENS = 64
GENERATE_TOKENS = 24
BEFORE_WINDOW = 8  # the prompt ends this many tokens before the window: decode crosses it
BATCH_LENGTHS = (40, 23)
BATCH_TOKENS = 8
MULTIMODAL_TEXT = 8  # text tokens on each side of the image block
MULTIMODAL_COMPARED = 8  # last positions whose logits the multimodal check compares


@dataclasses.dataclass(frozen=True)
class Prompts:
    logits: np.ndarray  # [1, T]
    generate: np.ndarray  # [1, window - 8]
    batch_ids: np.ndarray  # [2, T] left-padded
    batch_mask: np.ndarray  # [2, T]
    multimodal: dict | None  # input_ids, token_type_ids [1, T], pixel_values [1, 3, S, S]
    new_tokens: int = GENERATE_TOKENS
    batch_new_tokens: int = BATCH_TOKENS

    def digest(self) -> str:
        """sha256 over every array, for the reference cache key."""
        h = hashlib.sha256()
        arrays = [self.logits, self.generate, self.batch_ids, self.batch_mask]
        if self.multimodal:
            arrays += [self.multimodal[k] for k in sorted(self.multimodal)]
        for a in arrays:
            h.update(str(a.shape).encode() + str(a.dtype).encode() + a.tobytes())
        h.update(f"{self.new_tokens},{self.batch_new_tokens}".encode())
        return h.hexdigest()


def make_prompts(cfg: Gemma3Config, seed: int = 0) -> Prompts:
    rng = np.random.default_rng([seed, 7])
    text = cfg.text
    top = min(LAST_TEXT_ID, text.vocab_size, cfg.boi_token_id)  # small test configs: small vocab
    gen_len = max(4, min(text.sliding_window - BEFORE_WINDOW,
                         text.max_position_embeddings - GENERATE_TOKENS))
    long, short = BATCH_LENGTHS
    batch = np.zeros((2, long), np.int32)
    mask = np.zeros((2, long), np.int32)
    batch[0], mask[0] = _ids(rng, long, top)[0], 1
    batch[1, long - short:], mask[1, long - short:] = _ids(rng, short, top)[0], 1
    return Prompts(
        logits=_ids(rng, LOGITS_TOKENS, top),
        generate=_ids(rng, gen_len, top),
        batch_ids=batch,
        batch_mask=mask,
        multimodal=_multimodal(rng, cfg, top) if cfg.vision is not None else None,
    )


def _ids(rng: np.random.Generator, length: int, top: int) -> np.ndarray:
    body = rng.integers(FIRST_TEXT_ID, top, length - 1)
    return np.concatenate([[BOS_ID], body]).astype(np.int32)[None]  # BOS first, as a tokenizer does


def _multimodal(rng: np.random.Generator, cfg: Gemma3Config, top: int) -> dict:
    before = _ids(rng, MULTIMODAL_TEXT, top)[0].tolist()
    after = rng.integers(FIRST_TEXT_ID, top, MULTIMODAL_TEXT).tolist()
    block = [NEWLINES_ID, cfg.boi_token_id, *[cfg.image_token_id] * cfg.mm_tokens_per_image,
             cfg.eoi_token_id, NEWLINES_ID]  # what the processor expands <start_of_image> to
    ids = np.asarray([before + block + after], np.int32)
    vision = cfg.vision
    assert vision is not None  # called for multimodal configs only (see the caller above)
    size = vision.image_size
    pixels = rng.uniform(-1.0, 1.0, (1, vision.num_channels, size, size)).astype(np.float32)
    return {"input_ids": ids, "token_type_ids": (ids == cfg.image_token_id).astype(np.int32),
            "pixel_values": pixels}
