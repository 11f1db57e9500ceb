"""Weight files are checked, not trusted: the index agrees with the shards, shard paths stay in
the checkpoint, tensors do not share bytes, symlink loops are named, NaN and Inf are caught as
each tensor is converted, and SigLIP's unused pooling head is skipped by name."""

from __future__ import annotations

import json
import shutil
import struct

import jax
import ml_dtypes
import numpy as np
import pytest
from flax import nnx
from safetensors.numpy import load_file, save_file

import gemma3
from gemma3.ckpt import host_copy
from gemma3.ckpt.errors import CheckpointError, NonFiniteError
from gemma3.ckpt.host_copy import copy_out, first_nonfinite
from gemma3.ckpt.safetensors import read_header
from tests.support.tiny import save_text_model

INDEX = "model.safetensors.index.json"
SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    directory = tmp_path_factory.mktemp("source")
    save_text_model(directory, seed=5)
    return directory


@pytest.fixture
def ckpt(source, tmp_path):
    directory = tmp_path / "ckpt"
    shutil.copytree(source, directory)
    return directory


@pytest.fixture
def sharded(ckpt):
    """The tiny checkpoint split in two shards (embedding and layers 0-2 first) with its index."""
    tensors = load_file(ckpt / "model.safetensors")
    (ckpt / "model.safetensors").unlink()
    first = {k for k in tensors if "embed" in k or any(f"layers.{i}." in k for i in range(3))}
    weight_map = {}
    for shard, names in zip(SHARDS, (first, set(tensors) - first), strict=True):
        save_file({k: tensors[k] for k in names}, ckpt / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(names, shard))
    write_index(ckpt, weight_map)
    return ckpt


def write_index(directory, weight_map):
    (directory / INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def weight_map(directory):
    return json.loads((directory / INDEX).read_text())["weight_map"]


def refused(directory, error=CheckpointError, dtype="float32") -> str:
    with pytest.raises(error) as e:
        gemma3.from_pretrained(directory, dtype=dtype)
    return str(e.value)


def test_sharded_checkpoint_loads(sharded):
    gemma3.from_pretrained(sharded, dtype="float32")


def test_tensor_in_the_wrong_shard(sharded):
    wm = weight_map(sharded)
    wm["model.norm.weight"] = SHARDS[0]  # it is in the second shard
    write_index(sharded, wm)
    assert (f"model.norm.weight is in {SHARDS[1]}, but the weight_map puts it in {SHARDS[0]}"
            in refused(sharded))


def test_tensor_listed_but_in_no_shard(sharded):
    wm = weight_map(sharded)
    wm["model.layers.9.mlp.up_proj.weight"] = SHARDS[1]
    write_index(sharded, wm)
    assert (f"model.layers.9.mlp.up_proj.weight is listed in {SHARDS[1]} but no shard holds it"
            in refused(sharded))


def test_tensor_in_a_shard_but_not_listed(sharded):
    wm = weight_map(sharded)
    del wm["model.layers.4.mlp.down_proj.weight"]
    write_index(sharded, wm)
    assert (f"model.layers.4.mlp.down_proj.weight is in {SHARDS[1]} but not in the weight_map"
            in refused(sharded))


def test_every_index_disagreement_in_one_error(sharded):
    wm = weight_map(sharded)
    wm["model.norm.weight"] = SHARDS[0]
    wm["model.layers.9.mlp.up_proj.weight"] = SHARDS[1]
    del wm["model.layers.4.mlp.down_proj.weight"]
    write_index(sharded, wm)
    message = refused(sharded)
    assert f"{sharded / INDEX} disagrees with the shards (3 problem(s))" in message
    assert message.count("\n  ") == 3


@pytest.mark.parametrize("path", ["../outside.safetensors", "/tmp/outside.safetensors",
                                  "sub/../../outside.safetensors", ""])
def test_shard_path_outside_the_checkpoint(sharded, path):
    wm = weight_map(sharded)
    wm["model.norm.weight"] = path
    write_index(sharded, wm)
    message = refused(sharded)
    assert f"{sharded / INDEX} has 1 bad shard path(s):" in message
    assert f"weight_map['model.norm.weight'] = {path!r}: " in message


def raw_safetensors(path, entries: dict, data: bytes):
    header = json.dumps(entries).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def test_overlapping_tensors_are_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    raw_safetensors(path, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                           "c": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}},
                    bytes(16))
    with pytest.raises(CheckpointError) as e:
        read_header(path)
    start = 8 + path.read_bytes()[8:].index(bytes(16))  # absolute offsets in the file
    assert (f"{path} is corrupt: tensors' data ranges overlap (byte offsets in the file): "
            f"'a' [{start}, {start + 8}) and 'b' [{start + 4}, {start + 12})") == str(e.value)


def test_adjacent_and_empty_tensors_do_not_overlap(tmp_path):
    path = tmp_path / "model.safetensors"
    raw_safetensors(path, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                           "e": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                           "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}},
                    bytes(16))
    assert [t.name for t in read_header(path)] == ["a", "e", "b"]


def loop(path):
    """path -> path.loop -> path: a symlink loop."""
    other = path.with_name(path.name + ".loop")
    other.symlink_to(path.name)
    path.symlink_to(other.name)


def test_symlink_loop_as_config(ckpt):
    (ckpt / "config.json").unlink()
    loop(ckpt / "config.json")
    assert refused(ckpt).startswith(f"symlink loop at {ckpt / 'config.json'}: it points")


def test_symlink_loop_as_weights(ckpt):
    (ckpt / "model.safetensors").unlink()
    loop(ckpt / "model.safetensors")
    assert refused(ckpt).startswith(f"symlink loop at {ckpt / 'model.safetensors'}")


def test_symlink_loop_as_shard(sharded):
    (sharded / SHARDS[1]).unlink()
    loop(sharded / SHARDS[1])
    assert refused(sharded).startswith(f"symlink loop at {sharded / SHARDS[1]}")


def test_symlink_loop_as_the_checkpoint_directory(tmp_path):
    loop(tmp_path / "ckpt")
    # A path that also looks like a hub id: never sent to the hub, the loop is named.
    assert refused(tmp_path / "ckpt").startswith(f"symlink loop at {tmp_path / 'ckpt'}")


def poison(directory, name, index, value):
    tensors = load_file(directory / "model.safetensors")
    tensors[name][index] = value
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


@pytest.mark.parametrize("value, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_nonfinite_weight_is_named(ckpt, value, shown):
    poison(ckpt, "model.layers.2.mlp.up_proj.weight", (17, 3), value)
    message = refused(ckpt, NonFiniteError)
    assert message.startswith(
        f"tensor model.layers.2.mlp.up_proj.weight in model.safetensors holds non-finite values "
        f"(first: {shown} at index [17, 3] of the loaded [136, 72] array)")  # [out, in]
    assert "allow_nonfinite=True" in message


def test_nonfinite_weight_is_named_in_bfloat16(ckpt):
    poison(ckpt, "model.norm.weight", 70, np.nan)
    assert refused(ckpt, NonFiniteError, "bfloat16").startswith(
        "tensor model.norm.weight in model.safetensors holds non-finite values (first: nan at "
        "index [70]")


def test_nonfinite_weights_can_be_allowed(ckpt):
    poison(ckpt, "model.norm.weight", 5, np.inf)
    model = gemma3.from_pretrained(ckpt, dtype="float32", allow_nonfinite=True)
    weight = np.asarray(model.language_model.norm.weight[...])
    assert np.isinf(weight[5]) and np.isfinite(np.delete(weight, 5)).all()


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float16])
def test_first_nonfinite_reads_exponent_bits(dtype):
    info = ml_dtypes.finfo(dtype)  # np.finfo knows bfloat16 only from ml_dtypes 0.7 on
    a = np.array([0, -0.0, info.max, info.min, info.tiny, info.smallest_subnormal] * 100_000,
                 dtype)
    assert first_nonfinite(a) is None  # the extremes of the finite range are finite
    for bad, at in ((np.nan, 599_999), (-np.inf, 300_001), (np.inf, 0)):
        b = a.copy()
        b[at] = bad
        b[-1] = bad
        assert first_nonfinite(b) == at


def test_nonfinite_found_in_a_later_chunk(monkeypatch):
    # 4 KiB chunks: the copy takes 16 rows of 64 float32 at a time; the NaN sits in chunk 3.
    monkeypatch.setattr(host_copy, "COPY_CHUNK_BYTES", 4096)
    view = np.zeros((64, 64), np.float32)
    view[40, 9] = np.nan
    released = []
    with pytest.raises(NonFiniteError, match=r"^w holds non-finite values \(first: nan at index "
                                             r"\[40, 9\] of the loaded \[64, 64\] array\)"):
        copy_out(view, np.float32, lambda: released.append(1), "w")
    assert len(released) == 3  # it stopped at the chunk that holds the NaN
    assert copy_out(view, np.float32, lambda: None).shape == (64, 64)  # unchecked: copied


def test_nonfinite_found_in_a_transposed_view(monkeypatch):
    monkeypatch.setattr(host_copy, "COPY_CHUNK_BYTES", 4096)
    stored = np.zeros((64, 32), np.float32)
    stored[50, 7] = np.inf
    with pytest.raises(NonFiniteError, match=r"inf at index \[7, 50\] of the loaded \[32, 64\]"):
        copy_out(stored.T, ml_dtypes.bfloat16, lambda: None, "w")


def test_nonfinite_found_when_placed_with_a_sharding():
    from gemma3.ckpt.placement import put_sharded

    values = np.ones((8, 4), np.float32)
    values[6, 1] = np.nan
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with pytest.raises(NonFiniteError, match=r"^w holds non-finite .* index \[6, 1\]"):
        put_sharded(values, np.float32, sharding, lambda: None, "w")


@pytest.fixture(scope="module")
def with_vision_head(tmp_path_factory):
    """A tiny multimodal checkpoint saved by transformers with vision_use_head=true: it stores
    SigLIP's pooling head (vision_tower.head.*), which Gemma 3 never runs."""
    from transformers import Gemma3ForConditionalGeneration

    from tests.support.vision_fixtures import hf_config

    config = hf_config()
    config.vision_config.vision_use_head = True
    model = Gemma3ForConditionalGeneration(config).eval()
    directory = tmp_path_factory.mktemp("vision-head")
    model.save_pretrained(directory)
    return directory


def hub_layout(key: str) -> str:
    """The hub's 4b+ files name the SigLIP tensors vision_tower.vision_model.*."""
    return key.replace("vision_tower.", "vision_tower.vision_model.", 1)


def copy_with(source, directory, tensors, **vision_config):
    shutil.copytree(source, directory)
    config = json.loads((directory / "config.json").read_text())
    config["vision_config"].update(vision_config)
    (directory / "config.json").write_text(json.dumps(config))
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


@pytest.mark.parametrize("layout", [str, hub_layout], ids=["transformers-5", "hub"])
def test_vision_head_is_skipped_by_name(with_vision_head, tmp_path, layout):
    tensors = {layout(k): v for k, v in load_file(with_vision_head / "model.safetensors").items()}
    head = [k for k in tensors if ".head." in k]
    assert len(head) == 11 and all(k.startswith(layout("vision_tower.head.")) for k in head)
    directory = copy_with(with_vision_head, tmp_path / "ckpt", tensors)
    loaded = dict(nnx.to_flat_state(nnx.state(gemma3.from_pretrained(directory,
                                                                      dtype="float32"))))
    # The same checkpoint without the head and its flag loads to the same parameters.
    headless = copy_with(with_vision_head, tmp_path / "headless",
                         {k: v for k, v in tensors.items() if k not in head},
                         vision_use_head=False)
    expected = nnx.to_flat_state(nnx.state(gemma3.from_pretrained(headless, dtype="float32")))
    assert set(loaded) == {path for path, _ in expected}
    for path, value in expected:
        np.testing.assert_array_equal(np.asarray(loaded[path][...]), np.asarray(value[...]))


def test_tensors_near_the_vision_head_are_not_skipped(with_vision_head, tmp_path):
    tensors = load_file(with_vision_head / "model.safetensors")
    tensors["vision_tower.header.weight"] = np.zeros(2, np.float32)
    directory = copy_with(with_vision_head, tmp_path / "ckpt", tensors)
    assert "unexpected tensor vision_tower.header.weight in model.safetensors" in refused(directory)
