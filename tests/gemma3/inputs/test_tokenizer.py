"""The tokenizer wrapper: loading, special ids, encode/decode, incremental detokenization."""

import numpy as np
import pytest
from tokenizers import Tokenizer as Backend
from tokenizers import models

from gemma3.inputs.tokenizer import Tokenizer, TokenizerError
from tests.support.tokenizer_fixtures import build_test_tokenizer, write_test_tokenizer

TEXTS = ["Hello the world", "café 🙂 naïve", "  two  spaces\n\nand\tmore ", "日本語のテキスト",
         "the<end_of_turn>the"]


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> Tokenizer:
    directory = tmp_path_factory.mktemp("tok")
    write_test_tokenizer(directory)
    return Tokenizer.from_directory(directory)


def test_special_ids(tok):
    assert (tok.pad_id, tok.eos_id, tok.bos_id) == (0, 1, 2)
    assert (tok.start_of_turn_id, tok.end_of_turn_id) == (105, 106)
    assert tok.encode("\n\n", add_bos=False) == [108]
    assert tok.vocab_size == 301
    assert tok.boi_id is None  # the small vocabulary has no image tokens


def test_encode_adds_exactly_one_bos(tok):
    ids = tok.encode("Hello the world")
    assert ids[0] == 2 and ids.count(2) == 1
    assert tok.encode("Hello the world", add_bos=False) == ids[1:]
    assert tok.encode("<bos>Hi", add_bos=False)[0] == 2  # special text still maps to its id


@pytest.mark.parametrize("text", TEXTS)
def test_decode_round_trip(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids, skip_special_tokens=True) == text.replace("<end_of_turn>", "")
    assert tok.decode(ids) == "<bos>" + text


def test_real_image_ids_in_a_full_size_vocabulary(tmp_path):
    write_test_tokenizer(tmp_path, vocab_size=262_145)
    tok = Tokenizer.from_directory(tmp_path)
    assert (tok.boi_id, tok.eoi_id, tok.image_token_id) == (255_999, 256_000, 262_144)
    assert tok.vocab_size == 262_145
    assert tok.encode("<start_of_image><image_soft_token><end_of_image>", add_bos=False) == [
        255_999, 262_144, 256_000]
    assert tok.decode([262_144]) == "<image_soft_token>"


def test_image_ids_checked_against_the_model_config(tmp_path):
    backend = build_test_tokenizer(330, image_ids=(300, 301, 320))
    assert Tokenizer(backend, image_ids=(300, 301, 320)).boi_id == 300
    with pytest.raises(TokenizerError, match=r"<start_of_image> should be id 255999 but the file "
                                             r"has id 300"):
        Tokenizer(backend)


def test_missing_file_names_the_directory(tmp_path):
    with pytest.raises(TokenizerError, match=f"no tokenizer.json in {tmp_path}"):
        Tokenizer.from_directory(tmp_path)
    (tmp_path / "tokenizer.model").write_bytes(b"\0")
    with pytest.raises(TokenizerError, match="only tokenizer.model"):
        Tokenizer.from_directory(tmp_path)


def test_unreadable_file(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="could not be read as a tokenizer.json"):
        Tokenizer.from_directory(tmp_path)


def test_wrong_start_of_turn_id_is_named(tmp_path):
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<start_of_turn>": 4,
             "<end_of_turn>": 5}
    Backend(models.WordLevel(vocab, unk_token="<unk>")).save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(TokenizerError) as info:
        Tokenizer.from_directory(tmp_path)
    message = str(info.value)
    assert "<start_of_turn> should be id 105 but the file has id 4" in message
    assert "<end_of_turn> should be id 106 but the file has id 5" in message
    assert str(tmp_path) in message


def test_missing_special_token(tmp_path):
    path = write_test_tokenizer(tmp_path)
    path.write_text(path.read_text().replace("<end_of_turn>", "<end_turn>"))
    with pytest.raises(TokenizerError, match="<end_of_turn> should be id 106 but the file does "
                                             "not have it"):
        Tokenizer.from_directory(tmp_path)


def _stream(tok, ids, skip=True) -> list[str]:
    stream = tok.stream(skip_special_tokens=skip)
    return [stream.push(i) for i in ids] + [stream.flush()]


@pytest.mark.parametrize("text", TEXTS)
def test_stream_concatenates_to_decode(tok, text):
    ids = tok.encode(text)
    for skip in (True, False):
        assert "".join(_stream(tok, ids, skip)) == tok.decode(ids, skip)


def test_stream_is_incremental(tok):
    pieces = _stream(tok, tok.encode("Hello the world", add_bos=False))
    assert pieces[:7] == ["H", "e", "l", "l", "o", " the", " "]
    # "é" is two byte tokens: nothing until the run of bytes ends, then the whole character
    pieces = _stream(tok, tok.encode("café!", add_bos=False))
    assert pieces == ["c", "a", "f", "", "", "é!", ""]
    assert "\ufffd" not in "".join(pieces)


def test_stream_of_random_tokens_matches_decode(tok):
    """Any id sequence (broken UTF-8, specials, unknowns) streams to exactly its decode."""
    rng = np.random.default_rng(0)
    bytes_ = [i for i in range(tok.vocab_size) if tok.is_byte_token(i)]
    for _ in range(200):
        pool = np.r_[rng.integers(0, tok.vocab_size, 8), rng.choice(bytes_, 8), [0, 1, 2, 105, 106]]
        ids = rng.choice(pool, 12)
        for skip in (True, False):
            assert "".join(_stream(tok, ids, skip)) == tok.decode(ids, skip), ids.tolist()


def test_byte_tokens_are_exactly_the_byte_fallback_pieces(tok):
    """Looked up by spelling, they are the pieces a scan of the whole vocabulary finds (the
    small vocabulary has room for 192 of the 256)."""
    import re

    scanned = {i for t, i in tok.backend.tokenizer.get_vocab().items()
               if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", t)}
    assert len(scanned) == 192
    assert {i for i in range(tok.vocab_size) if tok.is_byte_token(i)} == scanned
