"""A small Gemma-3-shaped tokenizer.json for tests, since the real one cannot be downloaded here.

It has the parts of the real file that our code depends on: Gemma 3's special token ids (pad 0,
eos 1, bos 2, unk 3, mask 4, [multimodal] 5, <unused0> 6, <start_of_turn> 105, <end_of_turn> 106,
"\\n\\n" 108, image tokens at 255999 / 256000 / 262144 when the vocabulary is that large), a BPE
model with SentencePiece byte fallback, spaces written as "▁", the decoder chain Replace("▁", " ")
-> ByteFallback -> Fuse, and a post-processor that prepends <bos>.

Layout for vocab_size V: the fixed ids above, then printable ASCII pieces and a few merges, then
byte tokens <0x80>..<0xFF> and <0x00>..<0x7F> as far as room allows, then <unusedN> fillers.
With the default V = 301 (tests/tiny.py's vocabulary) every printable ASCII character and every
non-ASCII character (through its UTF-8 bytes) can be encoded.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

SPECIALS = {0: "<pad>", 1: "<eos>", 2: "<bos>", 3: "<unk>", 4: "<mask>", 5: "[multimodal]",
            6: "<unused0>", 105: "<start_of_turn>", 106: "<end_of_turn>"}
NEWLINE_IDS = {107: "\n", 108: "\n\n"}
REAL_IMAGE_IDS = (255_999, 256_000, 262_144)  # <start_of_image>, <end_of_image>, soft token
IMAGE_TOKENS = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")
MERGES = [("▁", "t"), ("h", "e"), ("▁t", "he"), ("\n", "\n")]


def _pieces() -> list[str]:
    """Ordinary pieces in the order they get free ids: characters, merge results, bytes."""
    chars = ["▁"] + [chr(c) for c in range(0x21, 0x7F)]
    merged = [a + b for a, b in MERGES if a + b not in NEWLINE_IDS.values()]
    byte_order = list(range(0x80, 0x100)) + list(range(0x80))
    return chars + merged + [f"<0x{b:02X}>" for b in byte_order]


def build_test_tokenizer(vocab_size: int = 301, image_ids: tuple[int, int, int] | None = None
                         ) -> Tokenizer:
    """A tokenizer with exactly vocab_size ids. image_ids (boi, eoi, soft token) default to the
    real ids when vocab_size > 262144, else no image tokens."""
    if image_ids is None and vocab_size > REAL_IMAGE_IDS[-1]:
        image_ids = REAL_IMAGE_IDS
    fixed = {**SPECIALS, **NEWLINE_IDS, **dict(zip(image_ids or (), IMAGE_TOKENS))}
    if max(fixed) >= vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is too small for fixed ids up to {max(fixed)}")
    pieces = iter(_pieces())
    vocab, unused = {}, 1
    for i in range(vocab_size):
        if i in fixed:
            vocab[fixed[i]] = i
            continue
        piece = next(pieces, None)
        if piece is None:
            piece, unused = f"<unused{unused}>", unused + 1
        vocab[piece] = i
    merges = [(a, b) for a, b in MERGES if a + b in vocab and a in vocab and b in vocab]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse()])
    specials = [t for i, t in sorted(fixed.items()) if i not in NEWLINE_IDS]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 2)])
    return tok


def write_test_tokenizer(directory: str | Path, vocab_size: int = 301,
                         image_ids: tuple[int, int, int] | None = None) -> Path:
    """Writes directory/tokenizer.json (see build_test_tokenizer) and returns its path."""
    path = Path(directory) / "tokenizer.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    build_test_tokenizer(vocab_size, image_ids).save(str(path))
    return path
