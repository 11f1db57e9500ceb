"""llama.cpp's GGUF tensor names -> the canonical names of gemma3.ckpt.weights, and the value
fix each one needs.

A GGUF of Gemma 3 (llama.cpp's convert_hf_to_gguf.py, `Gemma3Model`) renames every tensor and
stores every RMSNorm weight as 1 + w; it does not permute q/k (the llama permutation is not
applied to Gemma), and it leaves out the output head, which is tied to the embedding. This is
what transformers' GGUF loader undoes (`Gemma2TensorProcessor`, used for gemma3 too: `w - 1`
on every "norm.weight", nothing else). After renaming, gemma3.ckpt.weights' rules (and their shape
checks) apply unchanged, because GGUF's shapes, read slowest axis first, are torch's.
"""

from __future__ import annotations

import re

# (GGUF name pattern, canonical name, stored as 1 + w)
_BLOCK = r"blk\.(?P<i>\d+)\."
_LAYER = "language_model.layers.{i}."
NAME_TABLE = (
    (r"token_embd\.weight", "language_model.embed_tokens.weight", False),
    (r"output_norm\.weight", "language_model.norm.weight", True),
    (r"output\.weight", "lm_head.weight", False),  # tied head: accepted only as the embedding
    (_BLOCK + r"attn_norm\.weight", _LAYER + "input_layernorm.weight", True),
    (_BLOCK + r"attn_(?P<p>[qkv])\.weight", _LAYER + "self_attn.{p}_proj.weight", False),
    (_BLOCK + r"attn_(?P<p>[qk])_norm\.weight", _LAYER + "self_attn.{p}_norm.weight", True),
    (_BLOCK + r"attn_output\.weight", _LAYER + "self_attn.o_proj.weight", False),
    (_BLOCK + r"post_attention_norm\.weight", _LAYER + "post_attention_layernorm.weight", True),
    (_BLOCK + r"ffn_norm\.weight", _LAYER + "pre_feedforward_layernorm.weight", True),
    (_BLOCK + r"ffn_(?P<p>gate|up|down)\.weight", _LAYER + "mlp.{p}_proj.weight", False),
    (_BLOCK + r"post_ffw_norm\.weight", _LAYER + "post_feedforward_layernorm.weight", True),
)
_COMPILED = tuple((re.compile(p), name, shifted) for p, name, shifted in NAME_TABLE)


def _lookup(gguf_name: str) -> tuple[str, bool] | None:
    for pattern, name, shifted in _COMPILED:
        m = pattern.fullmatch(gguf_name)
        if m is not None:
            return name.format(**m.groupdict()), shifted
    return None


def canonical_name(gguf_name: str) -> str:
    """The gemma3.ckpt.weights canonical name; an unknown name comes back as it is, so the load plan
    reports it as an unexpected tensor."""
    found = _lookup(gguf_name)
    return gguf_name if found is None else found[0]


def stored_as_one_plus(gguf_name: str) -> bool:
    """Whether llama.cpp stored this tensor as 1 + w (every RMSNorm weight)."""
    found = _lookup(gguf_name)
    return found is not None and found[1]
