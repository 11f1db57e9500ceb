"""The tokenizer a Gemma 3 GGUF carries in its metadata: Gemma's SentencePiece BPE, run from
the vocabulary alone.

It gives the ids transformers gives for the same file (`AutoTokenizer.from_pretrained(dir,
gguf_file=name)`: integrations/gguf/gguf_tokenizer_mapping.py `gemma_tokenizer` and
`add_gguf_special_tokens`, models/gemma/tokenization_gemma.py, tokenization_utils_base.py
`generate_merges`, then the `tokenizers` BPE model, bpe/word.rs `merge_all`), step by step:
- tokens made only of whitespace with a space in them are stored with spaces; they are
  respelled with "▁" (U+2581);
- CONTROL tokens (<bos>, <start_of_turn>, <unusedN>, ...) are special and USER_DEFINED ones
  ("\\n" runs, [multimodal], ...) plain added tokens, both matched whole in the raw text, the
  leftmost match first and the longest of those;
- the text between them has " " replaced by "▁" and is one BPE word (the pre-tokenizer splits
  on " ", which the replacement has removed): each character is its token, or its UTF-8 bytes
  as <0xNN> tokens;
- then neighbours merge, best merge first: transformers ranks the merge (left, right) by the
  position of left + right in the vocabulary, ties (other splits of the same token) by the
  longer left piece, and lists every split of a token into two tokens. So a merge exists
  exactly when the concatenation is a token, and no merge table is built: building its
  514,906 entries took 3 s, and reading them back from a cache 1.2-1.5 s of every process.
- decoding replaces "▁" by " ", turns runs of byte tokens into their UTF-8 text (U+FFFD for
  each byte of a run that is not UTF-8) and joins the pieces.
The chat template is not in the file; gemma3.inputs.chat renders Gemma 3's.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from gemma3.ckpt.gguf.extent import StringArray
from gemma3.ckpt.gguf.file import GGUFError
from gemma3.config.errors import InputError

SPIECE_SPACE = "\u2581"
CONTROL, USER_DEFINED = 3, 4  # llama.cpp token types (gguf.TokenType)
SUPPORTED_MODEL = "llama"  # tokenizer.ggml.model of a SentencePiece vocabulary
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]
# A byte piece as the decoder reads it: 6 bytes, "<0x", two hex digits (Rust's u8 parse also
# takes "+" and one digit), ">".
_BYTE_PIECE = re.compile(r"<0x(\+[0-9A-Fa-f]|[0-9A-Fa-f]{2})>")


class GGUFTokenizerError(GGUFError):
    """GGUF tokenizer metadata that does not describe a Gemma 3 SentencePiece vocabulary."""


class SentencePieceBPE:
    """Text <-> ids for a Gemma SentencePiece vocabulary. tokens: id -> piece (distinct);
    special and added: the ids of the pieces matched whole before BPE (special ones are
    dropped when decoding with skip_special_tokens)."""

    def __init__(self, tokens: list[str], special: Iterable[int], added: Iterable[int],
                 source: str):
        self.tokens = tokens
        self.ids = dict(zip(tokens, range(len(tokens))))
        if len(self.ids) != len(tokens):
            twice = next(t for t, n in Counter(tokens).items() if n > 1)
            raise GGUFTokenizerError(f"{source}: the token {twice!r} is listed twice in "
                                     "tokenizer.ggml.tokens; each token needs one id")
        missing = [t for t in BYTE_TOKENS if t not in self.ids]
        if missing:
            raise GGUFTokenizerError(f"{source} lacks {len(missing)} of the 256 byte tokens "
                                     f"(first {missing[0]}); Gemma's vocabulary has them all")
        special = list(special)
        self.special_ids = frozenset(special)
        self._whole = {tokens[i]: i for i in [*special, *added]}
        lengths: dict[str, set[int]] = {}
        for t in self._whole:
            lengths.setdefault(t[0], set()).add(len(t))
        self._lengths = {c: sorted(n, reverse=True) for c, n in lengths.items()}
        self._starts = re.compile("[" + "".join(map(re.escape, self._lengths)) + "]"
                                  if self._lengths else "(?!)")  # (?!): never matches
        self._bytes = [self.ids[t] for t in BYTE_TOKENS]

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.ids.get(token)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        at = 0
        for start, end in self._whole_matches(text):
            ids += self._word(text[at:start])
            ids.append(self._whole[text[start:end]])
            at = end
        return ids + self._word(text[at:])

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        out: list[str] = []
        run = bytearray()
        for i in ids:
            if not 0 <= i < len(self.tokens) or (skip_special_tokens and i in self.special_ids):
                continue  # as `tokenizers` does: an id it has no token for decodes to nothing
            piece = self.tokens[i].replace(SPIECE_SPACE, " ")
            byte = _byte_value(piece)
            if byte is not None:
                run.append(byte)
                continue
            if run:
                out.append(_run_text(run))
                run.clear()
            out.append(piece)
        if run:
            out.append(_run_text(run))
        return "".join(out)

    def _whole_matches(self, text: str):
        """(start, end) of each whole-matched token: the leftmost, the longest there, then on
        after it."""
        end = 0
        for found in self._starts.finditer(text):
            start = found.start()
            if start < end:
                continue
            for n in self._lengths[text[start]]:
                if text[start:start + n] in self._whole:
                    end = start + n
                    yield start, end
                    break

    def _word(self, text: str) -> list[int]:
        """One BPE word: characters (or their bytes), then merges, the best first (its rank:
        the merged token's id, then the longer left piece), the leftmost among equals."""
        if not text:
            return []
        symbols: list[int] = []
        for char in text.replace(" ", SPIECE_SPACE):
            token = self.ids.get(char)
            if token is not None:
                symbols.append(token)
            else:
                symbols += [self._bytes[b] for b in _utf8(char)]
        n = len(symbols)
        following = list(range(1, n)) + [-1]
        preceding = list(range(-1, n - 1))
        alive = [True] * n
        queue = [m for pos in range(n - 1) if (m := self._merge(symbols, pos, pos + 1))]
        heapq.heapify(queue)
        while queue:
            _, _, pos, merged = heapq.heappop(queue)
            right = following[pos]
            if not alive[pos] or right < 0:
                continue
            current = self._merge(symbols, pos, right)
            if current is None or current[3] != merged:  # stale: a neighbour merged first
                continue
            symbols[pos], alive[right] = merged, False
            following[pos] = following[right]
            if following[right] >= 0:
                preceding[following[right]] = pos
            if preceding[pos] >= 0 and (m := self._merge(symbols, preceding[pos], pos)):
                heapq.heappush(queue, m)
            if following[pos] >= 0 and (m := self._merge(symbols, pos, following[pos])):
                heapq.heappush(queue, m)
        return [s for s, live in zip(symbols, alive) if live]

    def _merge(self, symbols: list[int], pos: int, right: int):
        """(merged id, -len(left piece), pos, merged id) when symbols pos and right merge."""
        left = self.tokens[symbols[pos]]
        merged = self.ids.get(left + self.tokens[symbols[right]])
        return None if merged is None else (merged, -len(left), pos, merged)


def _utf8(char: str) -> bytes:
    try:
        return char.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"the text holds {char!r}, a lone surrogate, which is not Unicode text "
                         "and has no UTF-8 bytes to tokenize") from None


def _byte_value(piece: str) -> int | None:
    if len(piece) != 6 or not piece.startswith("<0x"):
        return None
    found = _BYTE_PIECE.fullmatch(piece)
    return None if found is None else int(found.group(1), 16)


def _run_text(run: bytearray) -> str:
    try:
        return run.decode("utf-8")
    except UnicodeDecodeError:
        return "\ufffd" * len(run)


def from_metadata(meta: dict[str, Any], source: str) -> SentencePieceBPE:
    """The tokenizer of a GGUF file's metadata (see the module docstring)."""
    check_supported(meta, source)
    field = meta["tokenizer.ggml.tokens"]
    stored = field.decoded() if isinstance(field, StringArray) else list(field)
    types = list(meta.get("tokenizer.ggml.token_type") or ())
    if len(types) != len(stored):
        raise GGUFTokenizerError(f"{source} has {len(stored)} tokenizer.ggml.tokens but "
                                 f"{len(types)} tokenizer.ggml.token_type entries; expected one "
                                 "type per token")
    tokens = [SPIECE_SPACE * len(t) if " " in t and not t.strip() else t for t in stored]
    # transformers adds the tokens as stored, so the respelled space runs (USER_DEFINED) are
    # not added tokens but ordinary BPE ones: so here too.
    special = [i for i, kind in enumerate(types) if kind == CONTROL]
    respelled = [tokens[i] for i in special if tokens[i] != stored[i]]
    if respelled:
        raise GGUFTokenizerError(f"{source}: the CONTROL token {respelled[0]!r} is only "
                                 "whitespace; Gemma's control tokens are <...> names")
    added = [i for i, kind in enumerate(types) if kind == USER_DEFINED and tokens[i] == stored[i]]
    return SentencePieceBPE(tokens, special, added, source)


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
