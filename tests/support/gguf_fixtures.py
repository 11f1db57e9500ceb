"""Small GGUF files written with the gguf package's own writer and quantizers, for tests.

`write_gemma3_gguf` turns a transformers Gemma 3 state dict into a llama.cpp-style file: the same
names, norm weights stored as 1 + w, no output head, and a tiny SentencePiece-style vocabulary
with Gemma's special tokens at their ids.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

from gemma3.config import Gemma3Config, TextConfig

# Dimensions whose rows are whole 32-blocks (Q4_0/Q5_0/Q8_0...); defaults transformers' GGUF
# loader assumes for what the file does not state (query_pre_attn_scalar 256, local theta 1e4,
# pattern 6, no RoPE scaling), so both sides build the same model from the file.
TINY = {
    "vocab_size": 384, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 7,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
    "query_pre_attn_scalar": 256, "sliding_window": 5, "max_position_embeddings": 256,
}
# One type per tensor kind, so every quantizer the package has for these sizes is exercised.
TYPES = {
    "token_embd": Q.Q8_0, "attn_q": Q.Q4_0, "attn_k": Q.Q5_0, "attn_v": Q.Q8_0,
    "attn_output": Q.Q4_1, "ffn_gate": Q.Q5_1, "ffn_up": Q.BF16, "ffn_down": Q.F16,
}
HF_TO_GGUF = {
    "model.embed_tokens": "token_embd", "model.norm": "output_norm",
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
    "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
}


def tiny_config() -> Gemma3Config:
    return Gemma3Config(TextConfig.from_hf_config(TINY))


def gguf_name(hf_name: str) -> str:
    stem = hf_name.removesuffix(".weight")
    if stem in HF_TO_GGUF:
        return HF_TO_GGUF[stem] + ".weight"
    _, _, layer, rest = stem.split(".", 3)  # model.layers.N.rest
    return f"blk.{layer}.{HF_TO_GGUF[rest]}.weight"


def quantized(array: np.ndarray, qtype: Q) -> np.ndarray:
    return gguf.quants.quantize(np.ascontiguousarray(array, np.float32), qtype)


def add_tensor(writer: gguf.GGUFWriter, name: str, array: np.ndarray, qtype: Q) -> None:
    data = quantized(array, qtype)
    raw = qtype if qtype not in (Q.F32, Q.F16) else None
    writer.add_tensor(name, data, raw_dtype=raw)  # the shape follows from the bytes


def tiny_vocabulary(size: int) -> tuple[list[str], list[int]]:
    """Gemma's layout at small scale: <pad> <eos> <bos> <unk> <mask>, control <unusedN> up to
    105/106 (<start_of_turn>/<end_of_turn>), "\\n" runs, byte tokens, then pieces."""
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    tokens += [f"<unused{i}>" for i in range(105 - len(tokens))]
    tokens += ["<start_of_turn>", "<end_of_turn>", "\n", "\n\n", "  ", "   "]
    types = [3] * 107 + [4, 4, 1, 1]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    pieces = ["\u2581", "e", "t", "a", "o", "h", "\u2581t", "he", "\u2581the", "l", "\u2581a", "r",
              "s", "n", "i", "\u2581s", "\u2581c", "c", "at", "\u2581cat", "d", "f", "(", ")", ":"]
    pieces += [chr(ord("A") + i) for i in range(size - len(tokens) - len(pieces))]
    tokens += pieces[:size - len(tokens)]
    types += [1] * (len(tokens) - len(types))
    return tokens, types


def write_metadata(writer: gguf.GGUFWriter, text: dict, tokens: list[str], types: list[int]):
    writer.add_context_length(text["max_position_embeddings"])
    writer.add_embedding_length(text["hidden_size"])
    writer.add_block_count(text["num_hidden_layers"])
    writer.add_feed_forward_length(text["intermediate_size"])
    writer.add_head_count(text["num_attention_heads"])
    writer.add_head_count_kv(text["num_key_value_heads"])
    writer.add_key_length(text["head_dim"])
    writer.add_value_length(text["head_dim"])
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1_000_000.0)
    writer.add_sliding_window(text["sliding_window"])
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores([-1000.0 if t != 1 else -float(i) for i, t in enumerate(types)])
    writer.add_token_types(types)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


def finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_gemma3_gguf(path: Path, state_dict: dict[str, np.ndarray], text: dict = TINY,
                      arch: str = "gemma3", drop: tuple[str, ...] = (),
                      extra: dict[str, np.ndarray] | None = None) -> Path:
    """state_dict: transformers names -> float32 arrays (torch layout). drop: GGUF names to leave
    out; extra: GGUF names -> arrays to add (F32), for the bijection tests."""
    writer = gguf.GGUFWriter(path, arch)
    write_metadata(writer, text, *tiny_vocabulary(text["vocab_size"]))
    for hf_name, array in state_dict.items():
        if hf_name == "lm_head.weight":
            continue
        name = gguf_name(hf_name)
        if name in drop:
            continue
        kind = name.split(".")[-2]
        if "norm" in kind:
            add_tensor(writer, name, array + 1, Q.F32)  # llama.cpp stores Gemma norms as 1 + w
        else:
            add_tensor(writer, name, array, TYPES[kind])
    for name, array in (extra or {}).items():
        add_tensor(writer, name, array, Q.F32)
    finish(writer)
    return path
