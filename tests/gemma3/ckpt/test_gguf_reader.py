"""gemma3.gguf's reader on small files written with the gguf package's writer: every tensor
type we claim, read in chunks, against the package's own dequantizer."""

from __future__ import annotations

import gguf
import ml_dtypes
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

from gemma3.ckpt.errors import NonFiniteError
from gemma3.ckpt.gguf import file as reader
from tests.support.gguf_fixtures import add_tensor, finish

ROWS, COLS = 40, 256  # 256: one super-block per row for the K-quants
# Round-trip error of the package's quantizers on N(0, 1) data, as RMS error / RMS value.
# Measured over 5 seeds: F16 2.1e-4, BF16 1.7e-3, Q8_0 5.5e-3, Q5_1 3.9e-2, Q5_0 4.4e-2,
# Q4_1 8.0e-2, Q4_0 8.8e-2 (max); bounds at 1.5x, far below a misread block layout (~1.4).
ROUND_TRIP = {Q.F32: 0.0, Q.F16: 3e-4, Q.BF16: 2.5e-3, Q.Q8_0: 8e-3, Q.Q5_1: 6e-2,
              Q.Q5_0: 6.5e-2, Q.Q4_1: 0.12, Q.Q4_0: 0.13}
# Types the package dequantizes but cannot quantize: raw blocks, with the float16 scale fields
# (byte offsets in each block) set to small values so the values are finite.
K_QUANT_SCALES = {Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2),
                  Q.Q6_K: (208,)}
# The types we dequantize with our own kernels, not the package's: their scale is at byte 0.
OWN_KERNEL_SCALES = {Q.Q8_0: (0,), Q.Q5_0: (0,)}
SCALE_OFFSETS = {**K_QUANT_SCALES, **OWN_KERNEL_SCALES}


def random_blocks(qtype: Q, rows: int, seed: int) -> np.ndarray:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (rows, COLS // block, size), dtype=np.uint8)
    for offset in SCALE_OFFSETS[qtype]:
        scale = rng.uniform(0.001, 0.01, (rows, COLS // block)).astype(np.float16)
        data[..., offset:offset + 2] = scale.view(np.uint8).reshape(rows, -1, 2)
    return data.reshape(rows, -1)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One file holding a tensor of each type, its source values and its stored bytes."""
    path = tmp_path_factory.mktemp("gguf") / "types.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    rng = np.random.default_rng(0)
    arrays, raw = {}, {}
    for qtype in ROUND_TRIP:
        arrays[qtype.name] = rng.standard_normal((ROWS, COLS)).astype(np.float32)
        add_tensor(writer, qtype.name, arrays[qtype.name], qtype)
    for i, qtype in enumerate(K_QUANT_SCALES):
        raw[qtype.name] = random_blocks(qtype, ROWS, seed=i)
        writer.add_tensor(qtype.name, raw[qtype.name], raw_dtype=qtype)
    add_tensor(writer, "vector", arrays["F32"][0], Q.F32)
    finish(writer)
    return path, arrays, raw


def records(path) -> dict:
    return {r.name: r for r in reader.tensors(path)}


@pytest.mark.parametrize("qtype", list(ROUND_TRIP), ids=lambda q: q.name)
def test_quantized_types_read_as_the_package_dequantizes(written, qtype, monkeypatch):
    path, arrays, _ = written
    monkeypatch.setattr(reader, "DEQUANT_CHUNK_BYTES", 7 * COLS * 4)  # 6 chunks, the last short
    record = records(path)[qtype.name]
    assert record.shape == (ROWS, COLS) and record.ggml_type == qtype.name
    out = reader.dequantize(record, np.float32)
    expected = gguf.quants.dequantize(gguf.quants.quantize(arrays[qtype.name], qtype), qtype)
    np.testing.assert_array_equal(out, expected)
    source = arrays[qtype.name]
    error = np.sqrt(np.mean((out - source) ** 2) / np.mean(source**2))
    assert error <= ROUND_TRIP[qtype], f"{qtype.name}: relative RMS error {error:.1e}"


@pytest.mark.parametrize("qtype", list(K_QUANT_SCALES), ids=lambda q: q.name)
def test_k_quants_read_as_the_package_dequantizes(written, qtype, monkeypatch):
    path, _, raw = written
    monkeypatch.setattr(reader, "DEQUANT_CHUNK_BYTES", 3 * COLS * 4)
    out = reader.dequantize(records(path)[qtype.name], np.float32)
    expected = gguf.quants.dequantize(raw[qtype.name], qtype)
    assert out.shape == (ROWS, COLS) and np.isfinite(out).all()
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("qtype", list(OWN_KERNEL_SCALES), ids=lambda q: q.name)
def test_own_kernels_match_the_package_on_every_bit_pattern(tmp_path, qtype, monkeypatch):
    """Random blocks (all 256 values of every byte, unlike a quantizer's output) read through
    our kernel, chunk by chunk on the thread pool, are the package's values bit for bit."""
    raw = random_blocks(qtype, ROWS, seed=11)
    writer = gguf.GGUFWriter(tmp_path / "raw.gguf", "gemma3")
    writer.add_tensor("raw", raw, raw_dtype=qtype)
    finish(writer)
    monkeypatch.setattr(reader, "DEQUANT_CHUNK_BYTES", 7 * COLS * 4)
    out = reader.dequantize(records(tmp_path / "raw.gguf")["raw"], np.float32)
    np.testing.assert_array_equal(out, gguf.quants.dequantize(raw, qtype))


def test_dequantized_tensor_is_64_byte_aligned(written):
    """So XLA:CPU adopts it as the device buffer (device_put(may_alias=True)) without a copy."""
    path, _, _ = written
    for name in ("Q8_0", "Q4_K", "vector"):
        assert reader.dequantize(records(path)[name], ml_dtypes.bfloat16).ctypes.data % 64 == 0


def test_the_first_nonfinite_chunk_is_the_one_named(tmp_path, monkeypatch):
    """Chunks are dequantized in parallel, but the error names the first bad value."""
    values = np.ones((ROWS, COLS), np.float32)
    values[30, 5] = np.inf
    values[9, 2] = np.nan
    writer = gguf.GGUFWriter(tmp_path / "bad.gguf", "gemma3")
    add_tensor(writer, "bad", values, Q.F32)
    finish(writer)
    monkeypatch.setattr(reader, "DEQUANT_CHUNK_BYTES", 7 * COLS * 4)
    with pytest.raises(NonFiniteError, match=r"^tensor bad holds .*nan at index \[9, 2\]"):
        reader.dequantize(records(tmp_path / "bad.gguf")["bad"], np.float32, finite_check="tensor bad")


def test_a_file_dequantized_ahead_comes_back_in_order(written, monkeypatch):
    """The load's pipeline (later tensors dequantized while one is placed) gives each tensor as
    dequantize alone does, in the order asked, and releases each once."""
    path, _, _ = written
    monkeypatch.setattr(reader, "DEQUANT_CHUNK_BYTES", 7 * COLS * 4)
    monkeypatch.setattr(reader, "DEQUANT_AHEAD_BYTES", 3 * ROWS * COLS * 4)  # 3 tensors ahead
    chosen = [records(path)[name] for name in ("Q4_K", "vector", "Q8_0", "Q5_0", "F16", "Q6_K")]
    released: list[str] = []
    jobs = [(r, lambda name=r.name: released.append(name), None) for r in chosen]
    for record, out in zip(chosen, reader.dequantized(jobs, np.float32), strict=True):
        np.testing.assert_array_equal(out, reader.dequantize(record, np.float32))
    assert released == [r.name for r in chosen]


def test_the_first_tensor_with_a_nonfinite_value_is_the_one_named(tmp_path, monkeypatch):
    values = np.ones((ROWS, COLS), np.float32)
    writer = gguf.GGUFWriter(tmp_path / "bad.gguf", "gemma3")
    add_tensor(writer, "good", values, Q.F32)
    for name, row in (("first_bad", 33), ("second_bad", 0)):
        bad = values.copy()
        bad[row, 1] = np.nan
        add_tensor(writer, name, bad, Q.F32)
    finish(writer)
    monkeypatch.setattr(reader, "DEQUANT_CHUNK_BYTES", 7 * COLS * 4)
    jobs = [(r, None, f"tensor {r.name}") for r in reader.tensors(tmp_path / "bad.gguf")]
    arrays = reader.dequantized(jobs, np.float32)
    np.testing.assert_array_equal(next(arrays), values)
    with pytest.raises(NonFiniteError, match=r"^tensor first_bad holds .*at index \[33, 1\]"):
        next(arrays)


def test_bfloat16_target_is_the_float32_values_rounded(written):
    path, _, _ = written
    record = records(path)["Q4_K"]
    out = reader.dequantize(record, ml_dtypes.bfloat16)
    exact = reader.dequantize(record, np.float32)
    assert out.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(out, exact.astype(ml_dtypes.bfloat16))


def test_one_dimensional_tensor(written):
    path, arrays, _ = written
    record = records(path)["vector"]
    assert record.shape == (COLS,)
    np.testing.assert_array_equal(reader.dequantize(record, np.float32), arrays["F32"][0])


def test_norm_weights_stored_as_one_plus_w_come_back_as_w(tmp_path):
    path = tmp_path / "norm.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    w = np.linspace(-0.5, 3.0, 64, dtype=np.float32)
    add_tensor(writer, "blk.0.attn_norm.weight", w + 1, Q.F32)
    add_tensor(writer, "blk.0.attn_q.weight", w.reshape(2, 32) + 1, Q.F32)
    finish(writer)
    found = records(path)
    np.testing.assert_array_equal(reader.dequantize(found["blk.0.attn_norm.weight"], np.float32),
                                  (w + 1) - np.float32(1))
    np.testing.assert_array_equal(reader.dequantize(found["blk.0.attn_q.weight"], np.float32),
                                  w.reshape(2, 32) + 1)  # not a norm: as stored


def test_tensor_type_mix(written):
    mix = reader.tensor_types(written[0])
    assert mix == {**{q.name: 1 for q in [*ROUND_TRIP, *K_QUANT_SCALES]}, "F32": 2}
    assert list(mix) == sorted(mix)


def test_every_type_we_claim_is_supported():
    claimed = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_0", "Q5_K", "Q6_K"}
    assert claimed <= reader.supported_types()


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not a gguf file at all")
    with pytest.raises(reader.GGUFError, match="model.gguf could not be read as a GGUF"):
        reader.tensors(path)


def package_view(path):
    """The `gguf` package's own reading of a file: metadata and tensors."""
    package = gguf.GGUFReader(path, "r")
    metadata = {k: f.contents() for k, f in package.fields.items() if not k.startswith("GGUF.")}
    return metadata, package.tensors


def assert_reads_as_the_package_does(path):
    metadata, package_tensors = package_view(path)
    ours = reader.open_gguf(path)
    assert ours.metadata == metadata
    assert [t.name for t in ours.tensors] == [t.name for t in package_tensors]
    for mine, theirs in zip(ours.tensors, package_tensors, strict=True):
        assert (mine.ggml_type, mine.nbytes, mine.offset) == (
            theirs.tensor_type.name, int(theirs.n_bytes), int(theirs.data_offset))
        assert mine.shape == tuple(int(d) for d in reversed(theirs.shape))
        assert mine.data.dtype == theirs.data.dtype and mine.data.shape == theirs.data.shape
        assert np.array_equal(mine.data, theirs.data)


def test_the_file_reads_as_the_gguf_package_reads_it(written):
    assert_reads_as_the_package_does(written[0])


def test_a_gemma3_file_with_its_vocabulary_reads_as_the_package_reads_it(tmp_path):
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from tests.support import gguf_fixtures as fx
    from tests.support.tiny import randomize

    torch.manual_seed(3)
    model = Gemma3ForCausalLM(Gemma3TextConfig(**fx.TINY)).eval()
    randomize(model, seed=3)
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    assert_reads_as_the_package_does(fx.write_gemma3_gguf(tmp_path / "tiny.gguf", state))


def test_the_real_270m_reads_as_the_package_reads_it():
    """The released 270m's Q4_K_M file: 262,144 vocabulary entries, every metadata type."""
    from tests.support import real_270m_gguf

    assert_reads_as_the_package_does(real_270m_gguf())


def test_string_arrays_decode_as_read_and_name_a_bad_entry(tmp_path):
    """A metadata array of strings reads as the list the package gives (entries, slices and
    negative indices); an entry that is not UTF-8 is an error naming the file, the key and the
    entry, raised when that entry is read."""
    from gemma3.ckpt.gguf.extent import BadString, StringArray

    tokens = ["<pad>", "café", "", "▁the", "x" * 300]
    path = tmp_path / "strings.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    writer.add_token_list(tokens)
    add_tensor(writer, "vector", np.ones(32, np.float32), Q.F32)
    finish(writer)
    read = reader.open_gguf(path).metadata["tokenizer.ggml.tokens"]
    assert isinstance(read, StringArray) and read == tokens and len(read) == 5
    assert (read[1], read[-1], read[1:3]) == ("café", "x" * 300, ["café", ""])
    with pytest.raises(IndexError):
        read[5]

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(path.read_bytes().replace("café".encode(), b"caf\xff\xfe"))
    read = reader.open_gguf(bad).metadata["tokenizer.ggml.tokens"]
    assert read[0] == "<pad>"
    with pytest.raises(BadString, match=r"bad\.gguf, the metadata \(entry \d+ of \d+, "
                                         r"'tokenizer\.ggml\.tokens'\): entry 1 is not UTF-8"):
        read[1]
