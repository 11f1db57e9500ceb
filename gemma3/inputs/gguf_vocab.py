"""The tokenizer a Gemma 3 GGUF carries in its metadata, rebuilt as a `tokenizers` Tokenizer.

It is built exactly as transformers builds it from the same file (`AutoTokenizer.from_pretrained
(dir, gguf_file=name)`: integrations/gguf/gguf_tokenizer_mapping.py `gemma_tokenizer` and
`add_gguf_special_tokens`, models/gemma/tokenization_gemma.py, tokenization_utils_base.py
`generate_merges`), so both give the same ids:
- tokens made only of spaces are stored as spaces; they are respelled with "▁" (U+2581);
- the file has no merges: they are rebuilt from the vocabulary, every split of a token into two
  tokens, ordered by the token's position in the file (Gemma's scores do not follow merge order);
- a BPE with byte fallback, the normalizer " " -> "▁", a pre-tokenizer splitting after spaces,
  and a decoder undoing both;
- CONTROL tokens (<bos>, <start_of_turn>, <unusedN>, ...) become special added tokens and
  USER_DEFINED ones (runs of newlines, [multimodal], ...) plain added tokens, matched whole.
The chat template is not in the file; gemma3.inputs.chat renders Gemma 3's.
"""

from __future__ import annotations

from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE

from gemma3.ckpt.gguf.file import GGUFError

SPIECE_SPACE = "\u2581"
CONTROL, USER_DEFINED = 3, 4  # llama.cpp token types (gguf.TokenType)
SUPPORTED_MODEL = "llama"  # tokenizer.ggml.model of a SentencePiece vocabulary


class GGUFTokenizerError(GGUFError):
    """GGUF tokenizer metadata that does not describe a Gemma 3 SentencePiece vocabulary."""


def backend_from_metadata(meta: dict[str, Any], source: str) -> Tokenizer:
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if model != SUPPORTED_MODEL or not tokens:
        raise GGUFTokenizerError(
            f"{source} has tokenizer.ggml.model {model!r} with {len(tokens or ())} tokens; "
            f"expected {SUPPORTED_MODEL!r} (Gemma's SentencePiece vocabulary) with its tokens")
    if "tokenizer.ggml.merges" in meta:
        raise GGUFTokenizerError(f"{source} lists tokenizer.ggml.merges; a Gemma 3 GGUF has none "
                                 "(its merges follow from the vocabulary)")
    stored = tokens
    tokens = [SPIECE_SPACE * len(t) if " " in t and not t.strip() else t for t in stored]
    vocab = {token: index for index, token in enumerate(tokens)}
    merges = _merges(vocab, {token: -index for index, token in enumerate(tokens)})
    unk = tokens[int(meta.get("tokenizer.ggml.unknown_token_id", 3))]
    backend = Tokenizer(BPE(vocab=vocab, merges=merges, fuse_unk=True, unk_token=unk,
                            dropout=None, byte_fallback=True))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="merged_with_previous",
                                                 invert=False)
    backend.decoder = decoders.Sequence([decoders.Replace(SPIECE_SPACE, " "),
                                         decoders.ByteFallback(), decoders.Fuse()])
    backend.normalizer = normalizers.Replace(" ", SPIECE_SPACE)
    # transformers adds the tokens as stored, so the space runs ("  ", USER_DEFINED) are not in
    # the respelled vocabulary and stay ordinary BPE tokens: so here too.
    _add_tokens(backend, stored, meta.get("tokenizer.ggml.token_type") or ())
    return backend


def _merges(vocab: dict[str, int], scores: dict[str, float]) -> list[tuple[str, str]]:
    """transformers' generate_merges(vocab, scores): every (left, right) split of a token into
    two tokens, best score first, ties by the pieces' lengths (longer first)."""
    merges = []
    for merge, score in scores.items():
        local = [(merge[:i], merge[i:], score) for i in range(1, len(merge))
                 if merge[:i] in vocab and merge[i:] in vocab]
        merges.extend(sorted(local, key=lambda m: (vocab[m[0]], vocab[m[1]])))
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(left, right) for left, right, _ in merges]


def _add_tokens(backend: Tokenizer, tokens: list[str], types) -> None:
    control = [AddedToken(t, normalized=False, special=True)
               for t, kind in zip(tokens, types) if kind == CONTROL]
    backend.add_special_tokens(control)
    vocab = backend.get_vocab()
    user = [AddedToken(t, normalized=False, special=False)
            for t, kind in zip(tokens, types) if kind == USER_DEFINED and t in vocab]
    backend.add_tokens(user)
