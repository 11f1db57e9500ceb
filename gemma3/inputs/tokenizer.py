"""The Gemma 3 tokenizer: a tokenizer.json read with `tokenizers`, or a GGUF's vocabulary
(gemma3.inputs.gguf_vocab); special ids checked, streaming."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from tokenizers import Tokenizer as _Library

from gemma3.config.errors import InputError
from gemma3.config.special_tokens import (
    BOI,
    BOI_ID,
    BOS,
    BOS_ID,
    END_OF_TURN,
    END_OF_TURN_ID,
    EOI,
    EOI_ID,
    EOS,
    EOS_ID,
    IMAGE,
    IMAGE_TOKEN_ID,
    PAD,
    PAD_ID,
    START_OF_TURN,
    START_OF_TURN_ID,
)

TOKENIZER_FILE = "tokenizer.json"
# Every Gemma 3 tokenizer has these at these ids.
REQUIRED_IDS = {PAD: PAD_ID, EOS: EOS_ID, BOS: BOS_ID, START_OF_TURN: START_OF_TURN_ID,
                END_OF_TURN: END_OF_TURN_ID}


class TokenizerError(InputError):
    """A tokenizer file that is missing or is not a Gemma 3 tokenizer."""


class Backend(Protocol):
    """What Tokenizer needs of the code that tokenizes: JsonBackend (a tokenizer.json) or
    gemma3.inputs.gguf_vocab.SentencePieceBPE (a GGUF's vocabulary)."""

    special_ids: frozenset[int]

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...  # no special tokens added

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str: ...

    def token_to_id(self, token: str) -> int | None: ...


class JsonBackend:
    """A tokenizer.json, run by the `tokenizers` library."""

    def __init__(self, tokenizer: _Library):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.special_ids = frozenset(i for i, t in tokenizer.get_added_tokens_decoder().items()
                                     if t.special)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.tokenizer.token_to_id(token)


class Tokenizer:
    """Text <-> Gemma 3 token ids. Load with `Tokenizer.from_directory(checkpoint_dir)`, or
    `Tokenizer.from_gguf(model.gguf)` for the vocabulary in a GGUF file's metadata."""

    def __init__(self, backend: Backend | _Library, *, source: str = "tokenizer",
                 image_ids: tuple[int, int, int] = (BOI_ID, EOI_ID, IMAGE_TOKEN_ID)):
        """backend: a Backend, or a `tokenizers.Tokenizer` (run as a JsonBackend). image_ids:
        the (<start_of_image>, <end_of_image>, <image_soft_token>) ids the model expects (its
        config's); those tokens are checked when the file has them."""
        backend = JsonBackend(backend) if isinstance(backend, _Library) else backend
        self.backend = backend
        self.source = source
        expected = dict(REQUIRED_IDS)
        expected.update((t, i) for t, i in zip((BOI, EOI, IMAGE), image_ids)
                        if backend.token_to_id(t) is not None)
        _check_ids(backend, expected, source)
        self.bos_id, self.eos_id, self.pad_id = BOS_ID, EOS_ID, PAD_ID
        self.start_of_turn_id, self.end_of_turn_id = START_OF_TURN_ID, END_OF_TURN_ID
        self.boi_id, self.eoi_id, self.image_token_id = (backend.token_to_id(t)
                                                         for t in (BOI, EOI, IMAGE))
        self._byte_ids = _byte_token_ids(backend)
        self.special_ids = backend.special_ids

    @classmethod
    def from_directory(cls, directory: str | Path, config=None) -> Tokenizer:
        """Reads directory/tokenizer.json. config (a Gemma3Config) gives the image token ids."""
        directory = Path(directory)
        path = directory / TOKENIZER_FILE
        if not path.is_file():
            extra = (" It has only tokenizer.model (SentencePiece); add the tokenizer.json that "
                     "every Gemma 3 hub repo ships next to it."
                     if (directory / "tokenizer.model").is_file() else "")
            raise TokenizerError(f"no {TOKENIZER_FILE} in {directory}: the checkpoint directory "
                                 f"needs the tokenizer.json of its hub repo.{extra}")
        try:
            backend = _Library.from_file(str(path))
        except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception on bad files
            raise TokenizerError(f"{path} could not be read as a tokenizer.json: {e}") from None
        ids = (BOI_ID, EOI_ID, IMAGE_TOKEN_ID) if config is None else (
            config.boi_token_id, config.eoi_token_id, config.image_token_id)
        return cls(backend, source=str(path), image_ids=ids)

    @classmethod
    def from_gguf(cls, path: str | Path, config=None) -> Tokenizer:
        """The tokenizer a GGUF file carries in its metadata, with the ids transformers' GGUF
        conversion gives (gemma3.inputs.gguf_vocab). config (a Gemma3Config) as above."""
        from gemma3.ckpt.gguf.file import read_metadata
        from gemma3.inputs.gguf_vocab import from_metadata

        backend = from_metadata(read_metadata(path), str(path))
        ids = (BOI_ID, EOI_ID, IMAGE_TOKEN_ID) if config is None else (
            config.boi_token_id, config.eoi_token_id, config.image_token_id)
        return cls(backend, source=str(path), image_ids=ids)

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included (262145 for the released tokenizer)."""
        return self.backend.vocab_size

    def encode(self, text: str, add_bos: bool = True) -> list[int]:
        """Token ids of text, with one <bos> first when add_bos (never two: the file's own
        post-processor is not applied)."""
        ids = self.backend.encode(text)
        return [self.bos_id, *ids] if add_bos else ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def is_byte_token(self, token_id: int) -> bool:
        return int(token_id) in self._byte_ids

    def stream(self, skip_special_tokens: bool = True) -> StreamDecoder:
        """An incremental decoder for tokens that arrive one at a time."""
        return StreamDecoder(self, skip_special_tokens)


def _byte_token_ids(backend: Backend) -> frozenset[int]:
    """The ids of SentencePiece's byte-fallback pieces, <0x00> to <0xFF>, looked up by every
    spelling of the two hex digits (either case: 484 lookups) instead of by listing the
    262,144-entry vocabulary, which took 0.2 s."""
    digits = [sorted({c.upper(), c.lower()}) for c in "0123456789abcdef"]
    spellings = [f"<0x{high}{low}>" for a in digits for b in digits for high in a for low in b]
    return frozenset(i for i in map(backend.token_to_id, spellings) if i is not None)


def _check_ids(backend: Backend, expected: dict[str, int], source: str) -> None:
    problems = []
    for token, want in expected.items():
        got = backend.token_to_id(token)
        if got != want:
            found = "does not have it" if got is None else f"has id {got}"
            problems.append(f"{token} should be id {want} but the file {found}")
    if problems:
        raise TokenizerError(f"{source} is not a Gemma 3 tokenizer: " + "; ".join(problems)
                             + ". Use the tokenizer.json that ships with the checkpoint.")


class StreamDecoder:
    """Text pieces for tokens arriving one at a time, which concatenate to exactly
    `tokenizer.decode(all_tokens)`.

    Each push decodes the tokens since the last emitted piece together with the ones before
    them, and returns only the new suffix, so "▁" pieces become spaces where they belong. Byte
    tokens (<0xNN>, SentencePiece's fallback for characters outside the vocabulary) are held
    back until a non-byte token follows, because their UTF-8 decoding is only final once the run
    of bytes ends (special tokens that decoding skips do not end it); text ending in U+FFFD (an
    incomplete character) is held back too.
    """

    def __init__(self, tokenizer: Tokenizer, skip_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self._start = 0  # decoding starts here, one emitted piece back, for context
        self._emitted = 0  # tokens up to here have been turned into text

    def push(self, token_id: int) -> str:
        """Adds one token; returns the text it completes ("" while held back)."""
        self.ids.append(int(token_id))
        skipped = self.skip_special_tokens and int(token_id) in self.tokenizer.special_ids
        if skipped or self.tokenizer.is_byte_token(token_id):
            return ""
        return self._advance(final=False)

    def flush(self) -> str:
        """The text still held back (call once the last token is in)."""
        return self._advance(final=True)

    def _advance(self, final: bool) -> str:
        decode = self.tokenizer.decode
        before = decode(self.ids[self._start:self._emitted], self.skip_special_tokens)
        text = decode(self.ids[self._start:], self.skip_special_tokens)
        if not final and (len(text) <= len(before) or text.endswith("\ufffd")):
            return ""
        self._start, self._emitted = self._emitted, len(self.ids)
        return text[len(before):]
