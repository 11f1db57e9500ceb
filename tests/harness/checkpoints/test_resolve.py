"""Checkpoint ids: local weights hashed by content (cached by path, size and mtime), GGUF files
as real_quantized evidence with their tensor-type mix, and the reference cache keyed by both."""

import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from contract.evidence import KIND_OF_SOURCE
from harness.checkpoints import digests, registry
from harness.checkpoints import resolve as checkpoints
from harness.parity.prompts import make_prompts
from harness.reference.transformers_run import reference_dir

SPEC = registry.get("gemma-3-270m")


def write_local(directory, value: float = 1.0):
    directory.mkdir(exist_ok=True)
    save_file({"w": np.full((4, 4), value, np.float32)}, str(directory / "model.safetensors"))
    return directory


def test_the_id_changes_when_one_weight_byte_changes_and_the_headers_stay_equal(tmp_path):
    ckpt = write_local(tmp_path / "ckpt")
    first = checkpoints.resolve(SPEC, str(ckpt), 0, tmp_path / "cache")
    shard = ckpt / "model.safetensors"
    data = bytearray(shard.read_bytes())
    header_end = 8 + int.from_bytes(data[:8], "little")
    data[-1] ^= 0x01  # the last weight byte; the header (names, shapes, offsets) is untouched
    shard.write_bytes(bytes(data))
    assert shard.read_bytes()[:header_end] == bytes(data[:header_end])
    second = checkpoints.resolve(SPEC, str(ckpt), 0, tmp_path / "cache")
    assert first.source.startswith("local:") and second.source != first.source
    assert (first.evidence, first.quantization) == ("real", None)


def test_a_changed_checkpoint_does_not_reuse_the_stale_reference(tmp_path):
    ckpt = write_local(tmp_path / "ckpt")
    prompts = make_prompts(SPEC.config(), 0)
    before = checkpoints.resolve(SPEC, str(ckpt), 0, tmp_path / "cache")
    write_local(ckpt, 2.0)
    after = checkpoints.resolve(SPEC, str(ckpt), 0, tmp_path / "cache")
    assert (reference_dir(tmp_path, SPEC.id, "float32", before.key, prompts)
            != reference_dir(tmp_path, SPEC.id, "float32", after.key, prompts))


def test_the_content_digest_is_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    shard = write_local(tmp_path / "ckpt") / "model.safetensors"
    hashed = []
    real_hash = digests._hash
    monkeypatch.setattr(digests, "_hash", lambda path: hashed.append(path) or real_hash(path))
    first = digests.file_sha256(shard, tmp_path / "cache")
    assert digests.file_sha256(shard, tmp_path / "cache") == first and len(hashed) == 1
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # touched: read it again
    assert digests.file_sha256(shard, tmp_path / "cache") == first and len(hashed) == 2


def write_gguf(path, *, arch="gemma3", layers=18, width=640):
    gguf = pytest.importorskip("gguf", reason="GGUF checkpoints need the gguf package")
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(layers)
    writer.add_embedding_length(width)
    values = np.linspace(-1, 1, 2 * 64, dtype=np.float32).reshape(2, 64)
    writer.add_tensor("a.weight", values)
    writer.add_tensor("b.weight", values + 1)
    quant = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("c.weight", quant, raw_shape=quant.shape,
                      raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_file_is_real_quantized_evidence_with_its_hash_and_type_mix(tmp_path):
    path = write_gguf(tmp_path / "model.gguf")
    ckpt = checkpoints.resolve(SPEC, str(path), 0, tmp_path / "cache")
    digest = digests._hash(path)
    assert ckpt.source == ckpt.key == f"gguf:{digest}" and ckpt.evidence == "real_quantized"
    assert ckpt.quantization == {"format": "gguf", "file_sha256": digest,
                                 "tensor_types": {"F32": 2, "Q8_0": 1}}
    # A directory holding one .gguf (and no safetensors) names the same checkpoint.
    assert checkpoints.resolve(SPEC, str(tmp_path), 0, tmp_path / "cache") == ckpt
    assert checkpoints.describe(SPEC, str(path), 0, tmp_path / "cache") == ckpt


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"arch": "llama"}, "holds a 'llama' model (general.architecture)"),
    ({"layers": 26, "width": 1152}, ("gemma3.block_count is 26, gemma-3-270m has "
                                    "num_hidden_layers 18; gemma3.embedding_length is 1152")),
])
def test_a_gguf_of_another_model_is_refused(tmp_path, kwargs, message):
    path = write_gguf(tmp_path / "other.gguf", **kwargs)
    with pytest.raises(ValueError, match="is not gemma-3-270m|needs a gemma3 GGUF") as error:
        checkpoints.resolve(SPEC, str(path), 0, tmp_path / "cache")
    assert message in str(error.value)


def test_two_gguf_files_in_one_directory_are_ambiguous(tmp_path):
    write_gguf(tmp_path / "a.gguf")
    write_gguf(tmp_path / "b.gguf")
    with pytest.raises(ValueError, match=r"holds 2 GGUF files \(a.gguf, b.gguf\)"):
        checkpoints.resolve(SPEC, str(tmp_path), 0, tmp_path / "cache")


def test_each_source_form_has_one_evidence_kind():
    assert KIND_OF_SOURCE == {"synthetic": "synthetic", "hub": "real", "local": "real",
                              "gguf": "real_quantized"}


def test_the_preflight_refuses_a_gguf_of_another_model_before_the_run(tmp_path):
    from harness.run import preflight

    path = write_gguf(tmp_path / "other.gguf", layers=26, width=1152)
    with pytest.raises(preflight.Refused, match="other.gguf is not gemma-3-270m: gemma3.block_"):
        preflight.check_run(tmp_path / "results", str(tmp_path / "cache"), [SPEC], str(path))
    assert not (tmp_path / "results").exists()
    (tmp_path / "fine").mkdir()
    fine = write_gguf(tmp_path / "fine" / "model.gguf")
    preflight.check_run(tmp_path / "results", str(tmp_path / "cache"), [SPEC], str(fine))
