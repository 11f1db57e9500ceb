"""A GGUF file cut short is refused before anything is parsed into arrays, naming the file,
where it ends and, when tensor data is missing, the first tensor past the end with the expected
and actual sizes: by the library, the `gemma3` command and the harness's pre-check alike."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

from gemma3.ckpt.gguf import file as reader
from gemma3.ckpt.gguf.extent import TruncatedGGUF
from gemma3.cli.main import main as gemma3_main
from harness.checkpoints import registry
from harness.run import preflight

TOKENS = [f"token{i}" for i in range(500)]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A small but complete GGUF: string and array metadata, two tensors, the last 64 KiB."""
    path = tmp_path_factory.mktemp("gguf") / "whole.gguf"
    writer = gguf.GGUFWriter(path, "gemma3")
    writer.add_string("general.name", "cut test")
    writer.add_token_list(TOKENS)
    writer.add_tensor("blk.0.first.weight", np.ones((4, 32), np.float32), raw_dtype=Q.F32)
    writer.add_tensor("blk.0.second.weight", np.ones((64, 256), np.float32), raw_dtype=Q.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def cut(whole, tmp_path, at: int):
    data = whole.read_bytes()
    path = tmp_path / "trunc.gguf"
    path.write_bytes(data[:at])
    return path, len(data)


def cut_points(whole) -> dict[str, int]:
    """Byte offsets inside each part, found in the bytes themselves (not by the code tested)."""
    data = whole.read_bytes()
    return {"header": 12,
            "metadata": data.index(b"tokenizer.ggml.tokens") + 40,
            "tensor table": data.index(b"blk.0.second.weight") + 21,  # inside its dims
            "tensor data": len(data) - 1000}


@pytest.mark.parametrize("part", ["header", "metadata", "tensor table"])
def test_a_file_cut_inside_its_tables_says_where_it_ends(whole, tmp_path, part):
    path, _ = cut(whole, tmp_path, cut_points(whole)[part])
    with pytest.raises(TruncatedGGUF) as refused:
        reader.open_gguf(path)
    message = str(refused.value)
    assert message.startswith(f"{path} is truncated: it ends at byte {path.stat().st_size}, "
                              f"inside the {part}" if part != "header" else
                              f"{path} is truncated: it ends at byte 12, inside the GGUF header")
    if part == "metadata":
        assert "'tokenizer.ggml.tokens'" in message
    if part == "tensor table":
        assert "(tensor 2 of 2, 'blk.0.second.weight')" in message


def test_a_file_cut_inside_tensor_data_names_the_tensor_and_the_sizes(whole, tmp_path):
    path, size = cut(whole, tmp_path, cut_points(whole)["tensor data"])
    with pytest.raises(TruncatedGGUF) as refused:
        reader.open_gguf(path)
    message = str(refused.value)
    assert message.startswith(f"{path} is truncated: tensor 'blk.0.second.weight' (shape "
                              "[64, 256]) needs bytes ")
    assert f"but the file ends at byte {size - 1000}" in message
    # The whole file's data ends at least where this tensor's does; its padding is not needed.
    needed = int(message.split("at least ")[1].split(" bytes")[0])
    assert size - 32 <= needed <= size and "1 tensor(s) affected" in message


def test_the_whole_file_still_reads(whole):
    assert [t.name for t in reader.tensors(whole)] == ["blk.0.first.weight",
                                                       "blk.0.second.weight"]


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(TruncatedGGUF, match=r"empty\.gguf is empty \(0 bytes\)"):
        reader.open_gguf(path)


def test_the_command_line_reports_it_as_bad_input(whole, tmp_path, capsys):
    path, _ = cut(whole, tmp_path, cut_points(whole)["tensor data"])
    assert gemma3_main(["generate", "--checkpoint", str(path), "--prompt", "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gemma3 generate: error: {path} is truncated: tensor ")
    assert err.count("\n") == 1


def test_the_harness_names_the_option_and_passes_the_message_through(whole, tmp_path):
    path, _ = cut(whole, tmp_path, cut_points(whole)["tensor data"])
    with pytest.raises(preflight.Refused) as refused:
        preflight.check_gguf(registry.get("gemma-3-270m"), str(path), str(tmp_path / "cache"))
    assert str(refused.value).startswith(
        f"--checkpoint {path}: {path} is truncated: tensor 'blk.0.second.weight'")
