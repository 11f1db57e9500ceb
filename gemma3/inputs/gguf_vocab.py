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

Rebuilding the merges of a 262,144-token vocabulary takes ~3 s, so the built tokenizer is kept
as JSON under <user cache dir>/gemma3/tokenizers/ (`$GEMMA3_TOKENIZER_CACHE`; "off" disables
it), keyed by a hash of everything the build reads (tokens, their types, the unknown id) and of
this builder's version and the tokenizers library's: a file with another vocabulary, or a
changed builder, gets a new entry, and reading one back takes ~1 s.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE

from gemma3.ckpt.gguf.extent import StringArray
from gemma3.ckpt.gguf.file import GGUFError

SPIECE_SPACE = "\u2581"
CONTROL, USER_DEFINED = 3, 4  # llama.cpp token types (gguf.TokenType)
SUPPORTED_MODEL = "llama"  # tokenizer.ggml.model of a SentencePiece vocabulary
CACHE_ENV = "GEMMA3_TOKENIZER_CACHE"
BUILDER_VERSION = 1  # bump when build_backend changes what it builds
_BUILD_KEYS = ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
               "tokenizer.ggml.unknown_token_id")


class GGUFTokenizerError(GGUFError):
    """GGUF tokenizer metadata that does not describe a Gemma 3 SentencePiece vocabulary."""


def backend_from_metadata(meta: dict[str, Any], source: str) -> Tokenizer:
    """The tokenizer of the file's metadata, from the cache when it was built before."""
    check_supported(meta, source)
    path = _cache_path(meta)
    cached = _load(path) if path is not None else None
    if cached is not None:
        return cached
    backend = build_backend(meta)
    if path is not None:
        _store(path, backend.to_str())
    return backend


def check_supported(meta: dict[str, Any], source: str) -> None:
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if model != SUPPORTED_MODEL or not tokens:
        raise GGUFTokenizerError(
            f"{source} has tokenizer.ggml.model {model!r} with {len(tokens or ())} tokens; "
            f"expected {SUPPORTED_MODEL!r} (Gemma's SentencePiece vocabulary) with its tokens")
    if "tokenizer.ggml.merges" in meta:
        raise GGUFTokenizerError(f"{source} lists tokenizer.ggml.merges; a Gemma 3 GGUF has none "
                                 "(its merges follow from the vocabulary)")


def build_backend(meta: dict[str, Any]) -> Tokenizer:
    stored = list(meta["tokenizer.ggml.tokens"])  # decoded once (a StringArray decodes on read)
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


def _cache_path(meta: dict[str, Any]) -> Path | None:
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in ("off", "0", "none"):
        return None
    root = Path(value).expanduser() if value else Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gemma3" / "tokenizers"
    digest = hashlib.sha256(f"{BUILDER_VERSION}\0{tokenizers.__version__}".encode())
    for key in _BUILD_KEYS:
        field = meta.get(key)
        digest.update(f"\0{key}\0".encode())
        if isinstance(field, StringArray):  # the file's own bytes: the same strings, exactly
            digest.update(field.raw)
        elif isinstance(field, list) and field and isinstance(field[0], str):
            digest.update("\0".join(field).encode("utf-8", "surrogatepass"))
        else:
            digest.update(repr(field).encode())
    return root / f"{digest.hexdigest()}.json"


def _load(path: Path) -> Tokenizer | None:
    """The cached tokenizer; None when there is none or it is damaged (then it is rebuilt)."""
    try:
        return Tokenizer.from_str(path.read_text("utf-8"))
    except Exception:  # noqa: BLE001  # OSError, a decode error or the library's parse error
        return None


def _store(path: Path, text: str) -> None:
    """Written whole or not at all (a rename), and never an error: the cache only saves time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                         delete=False, suffix=".part") as f:
            f.write(text)
        os.replace(f.name, path)
    except OSError:
        pass
