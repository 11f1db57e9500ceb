"""Sharding over a ('fsdp', 'tp') mesh: parity with one device, real splits, memory, multi-host.

The multi-device checks run in child processes (tests/support/sharding_child.py) with emulated CPU
devices, which must be set before JAX starts; this session keeps its single device.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P
from safetensors.torch import save_file
from transformers import Gemma3ForCausalLM, Gemma3ForConditionalGeneration, Gemma3TextConfig

from gemma3.config import Gemma3Config, TextConfig, layer_types_from_pattern
from gemma3.nn.model import Gemma3
from gemma3.runtime import distributed, sharding
from tests.support import REPO_ROOT, SUPPORT
from tests.support.tiny import POST_NORM_GAIN, save_text_model
from tests.support.vision_fixtures import hf_config, random_pixels, token_types, two_image_batch

CHILD = SUPPORT / "sharding_child.py"
ROOT = REPO_ROOT
# fp32, highest matmul precision. Measured max |logit diff| / max |logit| against one device:
# ~1e-6 on every mesh (reduction order only); the bound is 10x that.
RELATIVE_TOL = 1e-5
# 8 devices, fsdp=8: peak RSS growth while loading / bytes the devices hold. Measured 1.02;
# one extra full copy of the 270m embedding (62% of the model) would make it 1.6.
RSS_RATIO_BOUND = 1.10
# The text checkpoint: query heads divide 8, one kv head (replicated on tp).
# Two layers, one of each type, halve the compile time of seven.
LAYERS = {"num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"]}
TEXT = {"vocab_size": 320, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 8,
        "num_key_value_heads": 1, "head_dim": 16, **LAYERS}
# Expected shard shapes per mesh (global: q [64,8,16] k [64,1,16] o [8,16,64] gate [64,128]
# down [128,64] embed [320,64]).
TEXT_SHARDS = {
    (8, 1): {"q_proj": [8, 16, 8], "k_proj": [1, 16, 8], "o_proj": [8, 8, 16],
             "gate_proj": [128, 8], "down_proj": [8, 128], "embed": [320, 8]},
    (1, 8): {"q_proj": [1, 16, 64], "k_proj": [1, 16, 64], "o_proj": [64, 1, 16],
             "gate_proj": [16, 64], "down_proj": [64, 16], "embed": [40, 64]},
    (2, 4): {"q_proj": [2, 16, 32], "k_proj": [1, 16, 32], "o_proj": [32, 2, 16],
             "gate_proj": [32, 32], "down_proj": [32, 32], "embed": [80, 32]},
}
# tests/vision_fixtures on (fsdp 4, tp 2): text D 64, N 4, K 2, H 16, V 330; vision C 32, N 4,
# H 8, F 48. Here the two kv heads are split on tp.
IMAGE_SHARDS = {"q_proj": [2, 16, 16], "k_proj": [1, 16, 16], "o_proj": [16, 2, 16],
                "gate_proj": [48, 16], "down_proj": [16, 48], "embed": [165, 16],
                "vision_q": [2, 8, 8], "vision_fc1": [24, 8], "projector": [32, 16]}


# ---------------------------------------------------------------------------------------------
# Single-process checks of the rules (they run while the children below compute)


def abstract(config: Gemma3Config):
    return nnx.eval_shape(lambda: Gemma3(config, dtype=jnp.bfloat16, rngs=nnx.Rngs(0)))


def one_layer(config: Gemma3Config) -> Gemma3Config:
    """Same shapes per layer, one layer of each tower: the rules see every kind of parameter."""
    text = dataclasses.replace(config.text, layer_types=config.text.layer_types[:1])
    vision = config.vision and dataclasses.replace(config.vision, num_hidden_layers=1)
    return dataclasses.replace(config, text=text, vision=vision)


# 27b, bf16, 8 devices: parameter bytes on the busiest device, from bytes_per_device on the
# full nnx.eval_shape model (test_27b_full_model_bytes). An eighth of 54.86 GB is 6.858e9; the
# rest is replicated norms (and nothing else: 16 kv heads divide tp=8).
BYTES_27B = {(8, 1): 6_861_173_344, (1, 8): 6_881_087_644, (2, 4): 6_869_550_904}


def bytes_from_one_layer(config: Gemma3Config, sizes: dict[str, int]) -> int:
    """bytes_per_device of the full model, from a one-layer model: every layer of a tower has
    the same shapes and specs, so each counts num_layers times (10x faster than the full
    eval_shape)."""
    model = abstract(one_layer(config))
    specs = sharding.parameter_specs(model, sizes)
    layers = {"language_model": config.text.num_hidden_layers,
              "vision_tower": config.vision.num_hidden_layers}
    total = 0
    for path, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        shard = sharding.shard_shape(value.shape, specs[path], sizes)
        repeat = layers[path[0]] if "layers" in path else 1
        total += repeat * math.prod(shard) * value.dtype.itemsize
    return total


@pytest.mark.parametrize("mesh", list(BYTES_27B), ids=lambda m: f"fsdp{m[0]}-tp{m[1]}")
def test_27b_fits_eight_16gb_devices(mesh):
    config = Gemma3Config.gemma3_27b()
    per_device = bytes_from_one_layer(config, {"fsdp": mesh[0], "tp": mesh[1]})
    assert per_device == BYTES_27B[mesh]
    assert config.num_params() * 2 / 8 <= per_device <= 1.01 * config.num_params() * 2 / 8
    assert per_device < 16e9 - 6e9, "leaves over 6 GB per device for the cache and activations"


@pytest.mark.slow
def test_27b_full_model_bytes():
    model = abstract(Gemma3Config.gemma3_27b())  # ~1250 parameters: 8 s of tracing
    for (fsdp, tp), expected in BYTES_27B.items():
        assert sharding.bytes_per_device(model, {"fsdp": fsdp, "tp": tp}) == expected


@pytest.mark.parametrize("size", ["270m", "1b", "4b", "12b", "27b"])
def test_default_mesh_divides_every_released_size(size):
    model = abstract(one_layer(Gemma3Config.for_size(size)))
    for devices in (2, 4, 8, 16, 32, 64):
        specs = sharding.parameter_specs(model, {"fsdp": devices, "tp": 1})
        assert specs[("language_model", "embed_tokens", "weight")] == P(None, "fsdp")


def tiny_text(heads: int, kv_heads: int) -> Gemma3Config:
    return Gemma3Config(TextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_attention_heads=heads,
        num_key_value_heads=kv_heads, head_dim=8, query_pre_attn_scalar=8, sliding_window=4,
        layer_types=layer_types_from_pattern(1)))


def test_kv_heads_replicate_when_tp_does_not_divide_them():
    specs = sharding.parameter_specs(abstract(tiny_text(8, 1)), {"fsdp": 2, "tp": 8})
    layer = ("language_model", "layers", 0, "self_attn")
    assert specs[(*layer, "q_proj", "kernel")] == P("tp", None, "fsdp")  # [N, H, D]
    assert specs[(*layer, "k_proj", "kernel")] == P(None, None, "fsdp")  # [K, H, D]
    assert specs[(*layer, "o_proj", "kernel")] == P("fsdp", "tp", None)  # [D, N, H]


def test_indivisible_mesh_names_the_parameter():
    with pytest.raises(sharding.ShardingError) as error:
        sharding.parameter_specs(abstract(tiny_text(4, 1)), {"fsdp": 1, "tp": 8})
    message = str(error.value)
    assert "language_model.layers.*.self_attn.q_proj.kernel" in message
    assert "query heads axis (N) has size 4" in message and "'tp' of size 8" in message
    assert "use tp in [1, 2, 4]" in message


def test_unknown_weight_has_no_silent_rule():
    with pytest.raises(sharding.ShardingError, match="no partition rule for language_model.x.w"):
        sharding.weight_axes(("language_model", "x", "w"), 2)


def test_activations_split_batch_on_fsdp_and_vocab_on_tp():
    sizes = {"fsdp": 2, "tp": 4}
    spec = sharding.logical_spec("BTV", (2, 5, 320), sizes, sharding.ACTIVATION_AXIS, "", [])
    assert spec == P("fsdp", None, "tp")
    odd_batch = sharding.logical_spec("BTD", (3, 5, 64), sizes, sharding.ACTIVATION_AXIS, "", [])
    assert odd_batch == P(None, None, None)  # replicated, not an error


def test_meshes_on_one_device():
    assert sharding.default_mesh() is None  # one device: the unsharded path
    assert dict(sharding.make_mesh().shape) == {"fsdp": 1, "tp": 1}
    with pytest.raises(sharding.ShardingError, match="needs fsdp \\* tp devices, and 1"):
        sharding.make_mesh(2, 1)
    with pytest.raises(sharding.ShardingError, match="expected \\('fsdp', 'tp'\\)"):
        sharding.parameter_shardings(abstract(tiny_text(2, 1)), jax.make_mesh((1,), ("x",)))


def test_a_users_explicit_mesh_becomes_auto():
    mesh = jax.make_mesh((1, 1), ("fsdp", "tp"))  # jax's default axis types are Explicit
    shardings = sharding.parameter_shardings(abstract(tiny_text(2, 1)), mesh)
    # Auto axes: GSPMD propagates through the unannotated model (the children run forwards).
    assert {s.mesh.axis_types for s in shardings.values()} == {(AxisType.Auto,) * 2}


def test_initialize_distributed_is_a_no_op_on_one_host():
    assert sharding.initialize_distributed({}) is False
    assert sharding.initialize_distributed({"SLURM_JOB_ID": "1", "SLURM_NTASKS": "1"}) is False
    with pytest.raises(ValueError, match="JAX_NUM_PROCESSES and JAX_PROCESS_ID are not"):
        sharding.initialize_distributed({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"})


@pytest.mark.parametrize(("env", "detected"), [
    ({"GEMMA3_DISTRIBUTED": "1"}, True),
    ({"SLURM_STEP_NODELIST": "n[1-2]", "SLURM_NTASKS": "2"}, True),
    ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"}, False),  # sbatch without srun: no step
    ({"OMPI_MCA_orte_hnp_uri": "1.0;tcp://h:1", "OMPI_COMM_WORLD_SIZE": "4"}, True),
    ({"TPU_WORKER_HOSTNAMES": "t0,t1"}, True),
    ({"TPU_WORKER_HOSTNAMES": "t0"}, False),  # a single-host TPU VM
])
def test_launchers_that_start_jax_distributed(env, detected):
    assert distributed._launcher_detected(env) is detected


# ---------------------------------------------------------------------------------------------
# Multi-device checks, in child processes


class Child:
    """One child process; its output goes to a log file (a full pipe would stall it)."""

    def __init__(self, mode: str, work: Path, *args, name: str | None = None, env=None):
        self.out = work / f"{name or mode}.json"
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT), **(env or {})}
        env.pop("XLA_FLAGS", None)  # the child sets its own device count
        self.log = self.out.with_suffix(".log").open("w")
        self.proc = subprocess.Popen([sys.executable, str(CHILD), mode, str(self.out),
                                      *map(str, args)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def report(self, timeout=400) -> dict:
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        log = self.out.with_suffix(".log").read_text()
        assert code == 0, f"child failed ({code}):\n{log[-4000:]}"
        return json.loads(self.out.read_text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def multimodal_model(seed: int) -> Gemma3ForConditionalGeneration:
    """The image fixtures' model with two text layers, weights drawn as tests/tiny.randomize
    draws them, so greedy tokens are confident and far from ties."""
    config = hf_config()
    config.text_config.update(LAYERS)
    model = Gemma3ForConditionalGeneration(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("language_model.norm.weight"):
                p.copy_(7 + 0.5 * noise)
            elif ".post_" in name:
                p.copy_(POST_NORM_GAIN - 1 + 0.5 * noise)
            elif p.ndim == 1:
                p.copy_(0.5 * noise)
            else:
                p.copy_(noise / p.shape[-1] ** 0.5)
    return model


def multimodal_checkpoint(directory: Path) -> Path:
    multimodal_model(seed=1).save_pretrained(directory)
    ids, mask = two_image_batch()
    np.savez(directory / "inputs.npz", ids=ids, mask=mask, pixels=random_pixels(3),
             token_types=token_types(ids))
    return directory


def synthetic_270m(directory: Path) -> Path:
    """A checkpoint with the 270m's config, tensor names, shapes and dtype, in two shard files
    with an index as larger hub releases are (zeros: values do not matter for memory)."""
    config = Gemma3TextConfig(
        vocab_size=262_144, hidden_size=640, intermediate_size=2048, num_hidden_layers=18,
        num_attention_heads=4, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
        sliding_window=512, max_position_embeddings=32_768)
    with torch.device("meta"):
        names = {k: v.shape for k, v in Gemma3ForCausalLM(config).state_dict().items()}
    names.pop("lm_head.weight")  # tied to the embedding, not stored (as on the hub)
    files = {k: f"model-0000{1 + ('embed' not in k)}-of-00002.safetensors" for k in names}
    for file in sorted(set(files.values())):
        save_file({k: torch.zeros(names[k], dtype=torch.bfloat16) for k in names
                   if files[k] == file}, directory / file, metadata={"format": "pt"})
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": files}))
    config.save_pretrained(directory)
    return directory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def children(tmp_path_factory):
    """Starts every child at once, before the first test of this file: they are independent,
    so they share the CPUs with each other and with the single-process tests above. The text
    checkpoint's single-device outputs (reference.npz) come from the parity child."""
    made = tmp_path_factory.mktemp
    text = made("sharding-text")
    save_text_model(text, seed=3, **TEXT)
    work = made("children")
    started = {"parity": Child("parity", work, text, multimodal_checkpoint(made("sharding-mm")))}
    env = {"JAX_COORDINATOR_ADDRESS": f"localhost:{free_port()}", "JAX_NUM_PROCESSES": "2"}
    for i in range(2):
        started[f"process{i}"] = Child("multihost", work, text, name=f"process{i}",
                                       env={**env, "JAX_PROCESS_ID": str(i)})
    started["rss"] = Child("rss", work, synthetic_270m(made("sharding-270m")), 8, 1)
    started["text"] = text
    yield started
    for child in started.values():
        if isinstance(child, Child):
            child.stop()


@pytest.fixture(scope="module")
def parity(children) -> dict:
    return children["parity"].report()


@pytest.mark.parametrize("mesh", list(TEXT_SHARDS), ids=lambda m: f"fsdp{m[0]}-tp{m[1]}")
def test_sharded_text_matches_one_device(parity, mesh):
    case = next(c for c in parity["text"] if tuple(c["mesh"]) == mesh)
    assert case["max_abs_diff"] <= RELATIVE_TOL * case["ref_max_abs"], case
    assert case["tokens_equal"], case["tokens"]
    assert {k: v["shard"] for k, v in case["shards"].items()} == TEXT_SHARDS[mesh]
    assert case["model_mesh"] == {"fsdp": mesh[0], "tp": mesh[1]}


def test_sharded_images_match_one_device(parity):
    (case,) = parity["images"]
    assert case["max_abs_diff"] <= RELATIVE_TOL * case["ref_max_abs"], case
    assert case["tokens_equal"], case["tokens"]
    assert {k: v["shard"] for k, v in case["shards"].items()} == IMAGE_SHARDS


def test_cache_constraint_splits_batch_and_divisible_kv_heads(parity):
    assert parity["cache"]["kv1"]["keys"] == ["fsdp", None, None, None]  # K replicated
    assert parity["cache"]["kv8"]["keys"] == ["fsdp", "tp", None, None]  # [B, K, S, H]
    assert parity["cache"]["kv8"]["key_valid"] == ["fsdp", None]


def test_sharded_load_holds_one_copy(children):
    result = children["rss"].report()
    grown = result["peak"] - result["base"]
    assert result["shards"]["embed"] == {"global": [262_144, 640], "shard": [262_144, 80]}
    # Split eight ways, not copied per device (norms and the one kv head are replicated).
    assert result["held"] < 1.05 * result["checkpoint_bytes"]
    assert grown <= RSS_RATIO_BOUND * result["held"], (grown / result["held"], result)


def test_multihost_two_processes(children, parity):
    """Two processes of two CPU devices each, joined by jax.distributed (gloo), as on two hosts."""
    results = [children[f"process{i}"].report() for i in range(2)]
    reference = np.load(children["text"] / "reference.npz")
    for i, result in enumerate(results):
        assert (result["joined"], result["process"], result["processes"]) == (True, i, 2)
        assert (result["devices"], result["local_devices"]) == (4, 2)
        assert result["shards"]["q_proj"]["shard"] == [4, 16, 32]  # fsdp 2, tp 2
        arrays = np.load(children[f"process{i}"].out.with_suffix(".npz"))
        diff = np.abs(arrays["logits"] - reference["logits"]).max()
        assert diff <= RELATIVE_TOL * np.abs(reference["logits"]).max()
        np.testing.assert_array_equal(arrays["tokens"], reference["tokens"])
    rows = [r["rows_read"] for r in results]  # each host reads only its own fsdp half
    assert sorted(rows[0] + rows[1]) == [0, 1, 2, 3] and len(rows[0]) == 2
