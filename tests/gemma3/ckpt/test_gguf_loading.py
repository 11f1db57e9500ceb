"""Loading a tiny Gemma 3 GGUF: parity with transformers' own GGUF load of the same file, the
name map's bijection and its one error, the tied head, and which reader a path picks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import gemma3
from gemma3.ckpt import placement
from gemma3.ckpt.errors import LoadError, NonFiniteError
from gemma3.ckpt.gguf import config as gguf_config
from gemma3.ckpt.gguf import file as gguf_checkpoint
from gemma3.ckpt.gguf.config import GGUFConfigError
from gemma3.ckpt.loading import load_gguf
from tests.support import gguf_fixtures as fx
from tests.support.tiny import random_ids, randomize

pytest.importorskip("accelerate", reason="transformers' GGUF loading needs accelerate")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A random tiny model as transformers names it (float32 numpy), and its GGUF file."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(3)
    model = Gemma3ForCausalLM(Gemma3TextConfig(**fx.TINY, attn_implementation="eager")).eval()
    randomize(model, seed=3)
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    path = fx.write_gemma3_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf", state)
    return path, state


def load(path, dtype="float32", **kwargs):
    return load_gguf(path, dtype, config=fx.tiny_config(), **kwargs)


def transformers_logits(path, ids, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype,
                                                 attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.float().numpy()


def test_fp32_logits_match_transformers_gguf_load(source):
    path, _ = source
    ids = random_ids((2, 12), fx.TINY["vocab_size"], seed=3)  # 12 > window 5: both layer types
    ref = transformers_logits(path, ids)
    out = np.asarray(load(path)(ids))
    worst = np.abs(out - ref).max() / np.abs(ref).max()
    # Both sides dequantize the same bytes with the gguf package, so the weights are equal and
    # only fp32 rounding differs: measured 8.2e-7 to 1.2e-6 over 4 seeds. A norm left at 1 + w,
    # a transposed kernel or a wrong window is off by 1e-2 or more.
    assert worst < 3e-6, f"max |diff| / max |logit| = {worst:.1e}"


def test_bf16_load_is_the_fp32_weights_rounded(source):
    path, _ = source
    exact, rounded = load(path), load(path, "bfloat16")
    q_exact = np.asarray(exact.language_model.layers[0].self_attn.q_proj.kernel[...])
    q_rounded = rounded.language_model.layers[0].self_attn.q_proj.kernel[...]
    assert q_rounded.dtype == jnp_bfloat16()
    np.testing.assert_array_equal(np.asarray(q_rounded), q_exact.astype(q_rounded.dtype))


def jnp_bfloat16():
    import jax.numpy as jnp

    return jnp.bfloat16


def test_every_mismatch_is_reported_at_once(source, tmp_path):
    state = dict(source[1])
    state["model.layers.1.post_feedforward_layernorm.weight"] = np.zeros(65, np.float32)
    bad = fx.write_gemma3_gguf(tmp_path / "bad.gguf", state, drop=("blk.0.attn_q.weight",),
                               extra={"blk.0.attn_z.weight": np.zeros(64, np.float32)})
    with pytest.raises(LoadError) as error:
        load(bad)
    message = str(error.value)
    assert "bad.gguf does not match" in message and "(3 problem(s))" in message
    assert "unexpected tensor blk.0.attn_z.weight in bad.gguf" in message
    assert "missing tensor for language_model.layers.0.self_attn.q_proj.kernel" in message
    assert "blk.1.post_ffw_norm.weight in bad.gguf has shape [65]; the config expects [64]" in message


def test_stored_output_head_equal_to_the_embedding_is_accepted(source, tmp_path):
    path, state = source
    embedding = gguf_checkpoint.dequantize(
        {r.name: r for r in gguf_checkpoint.tensors(path)}["token_embd.weight"], np.float32)
    tied = fx.write_gemma3_gguf(tmp_path / "tied.gguf", state, extra={"output.weight": embedding})
    ids = random_ids((1, 6), fx.TINY["vocab_size"])
    np.testing.assert_array_equal(np.asarray(load(tied)(ids)), np.asarray(load(path)(ids)))


def test_untied_output_head_is_refused(source, tmp_path):
    _, state = source
    head = state["model.embed_tokens.weight"] + 1
    untied = fx.write_gemma3_gguf(tmp_path / "untied.gguf", state, extra={"output.weight": head})
    with pytest.raises(LoadError, match="output.weight in untied.gguf differs from the embedding"):
        load(untied)


def test_undecodable_type_is_named(source, monkeypatch):
    path, _ = source
    monkeypatch.setattr(gguf_checkpoint, "supported_types", lambda: {"F32", "F16"})
    with pytest.raises(LoadError, match="token_embd.weight in tiny.gguf has type Q8_0, which the "
                                        "gguf package cannot dequantize"):
        load(path)


def test_unknown_size_is_refused_by_from_pretrained(source):
    with pytest.raises(GGUFConfigError, match="tiny.gguf describes a Gemma 3 of unknown size"):
        gemma3.from_pretrained(source[0])


@pytest.fixture
def as_released(monkeypatch):
    """Lets the tiny size stand for a released one, so the public entry points accept it."""
    monkeypatch.setattr(gguf_config, "_released_size", lambda shape, source: fx.tiny_config())


def test_from_pretrained_takes_a_file_or_a_directory_holding_one(source, tmp_path, as_released):
    path, _ = source
    shutil.copy(path, tmp_path / "model.gguf")
    ids = random_ids((1, 6), fx.TINY["vocab_size"])
    expected = np.asarray(load(path)(ids))
    for target in (path, tmp_path):
        model = gemma3.from_pretrained(target, dtype="float32")
        assert model.config.vision is None
        np.testing.assert_array_equal(np.asarray(model(ids)), expected)


def test_several_gguf_files_in_a_directory_are_listed(source, tmp_path):
    for name in ("a.gguf", "b.gguf"):
        shutil.copy(source[0], tmp_path / name)
    with pytest.raises(gguf_checkpoint.GGUFError, match=r"holds 2 GGUF files \(a.gguf, b.gguf\)"):
        gemma3.from_pretrained(tmp_path)


def test_a_directory_with_safetensors_is_a_safetensors_checkpoint(source, tmp_path):
    shutil.copy(source[0], tmp_path / "model.gguf")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert gguf_checkpoint.find_gguf(tmp_path) is None
    assert gguf_checkpoint.find_gguf(tmp_path / "model.gguf") == tmp_path / "model.gguf"


def test_cli_generates_from_the_file_alone(source, tmp_path, as_released, capsys):
    from gemma3.cli.main import main

    shutil.copy(source[0], tmp_path / "model.gguf")  # nothing else in the directory
    status = main(["generate", "--checkpoint", str(tmp_path / "model.gguf"), "--chat",
                   "--prompt", "the cat", "--max-new-tokens", "3", "--quiet"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert captured.err == "" and captured.out.endswith("\n")


def test_large_tensors_streamed_to_the_device_are_the_same(source, monkeypatch):
    path, _ = source
    ids = random_ids((1, 6), fx.TINY["vocab_size"])
    expected = np.asarray(load(path)(ids))
    # Streaming is what an accelerator does (on CPU the host array is the device buffer).
    monkeypatch.setattr(placement, "host_is_device_memory", lambda: False)
    monkeypatch.setattr(placement, "STREAMED_TENSOR_BYTES", 0)  # every same-shape tensor
    monkeypatch.setattr(gguf_checkpoint, "DEQUANT_CHUNK_BYTES", 7 * 64 * 4)  # 7-row chunks
    streamed = []
    from_rows = placement.Placer.from_rows
    monkeypatch.setattr(placement.Placer, "from_rows",
                        lambda self, shape, rows: streamed.append(shape) or from_rows(self, shape, rows))
    np.testing.assert_array_equal(np.asarray(load(path)(ids)), expected)
    assert streamed, "no tensor was streamed"


def test_nonfinite_weight_is_named_unless_allowed(source, tmp_path):
    state = dict(source[1])
    norm = state["model.layers.1.input_layernorm.weight"].copy()
    norm[3] = np.nan
    state["model.layers.1.input_layernorm.weight"] = norm
    bad = fx.write_gemma3_gguf(tmp_path / "nan.gguf", state)
    with pytest.raises(NonFiniteError, match=r"tensor blk\.1\.attn_norm\.weight in nan\.gguf "
                                             r"holds non-finite values \(first: nan at index \[3\]"):
        load(bad)
    weight = load(bad, allow_nonfinite=True).language_model.layers[1].input_layernorm.weight
    assert np.isnan(np.asarray(weight[...])[3])
