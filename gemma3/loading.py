"""`from_pretrained`: a checkpoint directory or hub id -> a Gemma3 module with its weights.

The weight map is checked as a bijection before any tensor is read: every checkpoint tensor is
used once, every parameter set once, shapes and dtypes checked, and all problems are reported
together. Tensors are then converted one at a time, so peak host memory stays near one copy of
the model in the target dtype.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemma3 import weights
from gemma3.checkpoint import (
    CheckpointError,
    TensorInfo,
    TensorReader,
    copy_out,
    exists,
    read_tensors,
)
from gemma3.config import Gemma3Config
from gemma3.hf_config import config_from_hf
from gemma3.hub import resolve_checkpoint
from gemma3.model import Gemma3
from gemma3.progress import Progress

DTYPES = {"bfloat16": jnp.bfloat16, "float32": jnp.float32}
Path_ = tuple  # a parameter path, e.g. ('language_model', 'layers', 0, 'mlp', 'up_proj', 'kernel')


class LoadError(CheckpointError):
    """The checkpoint does not match the model its config describes."""


def resolve_dtype(dtype) -> jnp.dtype:
    name = jnp.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name == "float16":
        # Gemma 3's residual stream exceeds fp16's 65504 and turns into inf/NaN (transformers
        # #36822), so we refuse rather than return garbage.
        raise ValueError("dtype float16 is not supported: Gemma 3 activations overflow float16 "
                         "and produce NaN. Use 'bfloat16' (the released weights' dtype) or "
                         "'float32'.")
    if name not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not supported; use one of {sorted(DTYPES)}")
    return jnp.dtype(DTYPES[name])


def load_config(directory: Path) -> Gemma3Config:
    path = directory / "config.json"
    if not exists(path):
        raise CheckpointError(f"no config.json in {directory}: a checkpoint directory needs the "
                              "config.json that comes with the weights")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{path} is not UTF-8 text (byte {e.start}: "
                              f"{e.object[e.start:e.start + 1]!r}); config.json must be UTF-8 "
                              "JSON") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    return config_from_hf(raw, source=str(path))


def from_pretrained(path_or_hub_id: str | Path, *, dtype="bfloat16", text_only: bool = False,
                    revision: str | None = None, mesh=None, progress: bool | None = None,
                    allow_nonfinite: bool = False) -> Gemma3:
    """Loads a Gemma 3 checkpoint: a local directory or a hub id such as google/gemma-3-1b-it
    (config.json + safetensors), or a llama.cpp GGUF file (`model.gguf`, or a directory holding
    exactly one .gguf and no safetensors; see gemma3.gguf: text decoder only, dequantized).

    dtype: 'bfloat16' or 'float32' (float16 is refused: Gemma 3 overflows it).
    text_only: for 4b and up, load the text decoder alone (vision weights are not read).
    mesh: a jax.sharding.Mesh with axes ('fsdp', 'tp'); each tensor goes straight to its shards.
    allow_nonfinite: load tensors holding NaN or Inf (by default each tensor is checked as it is
        converted, and the first such tensor is an error naming it).
    """
    target = resolve_dtype(dtype)
    from gemma3 import gguf  # here, not at the top: gemma3.gguf builds on this module

    gguf_file = gguf.find_gguf(path_or_hub_id)
    if gguf_file is not None:
        return gguf.load_gguf(gguf_file, target, mesh=mesh, progress=progress,
                              allow_nonfinite=allow_nonfinite)
    directory = resolve_checkpoint(path_or_hub_id, revision=revision)
    config = load_config(directory)
    if text_only:
        config = dataclasses.replace(config, vision=None)
    model, graphdef, params = abstract_params(config, target)
    plan = plan_load(directory, params, skip_vision=text_only)
    shardings = _shardings(model, mesh)
    with TensorReader() as reader, Progress(f"loading {directory.name}", len(plan),
                                            sum(i.nbytes for i, _ in plan.values()),
                                            enabled=progress) as bar:
        for path, (info, transform) in plan.items():
            check = None if allow_nonfinite else f"tensor {info.name} in {info.file.name}"
            place = _placer(transform, params[path].shape, target, shardings.get(path),
                            release=lambda info=info: reader.release(info), finite_check=check)
            params[path].set_value(reader.read(info, place))
            bar.advance(info.nbytes)
    return nnx.merge(graphdef, nnx.from_flat_state(params))


def abstract_params(config: Gemma3Config, target) -> tuple:
    """The abstract model, its graphdef and its flat parameter dict (shapes only, nothing
    allocated)."""
    model = nnx.eval_shape(lambda: Gemma3(config, dtype=target, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(model)
    return model, graphdef, dict(nnx.to_flat_state(state))


def _placer(transform: weights.Transform, shape, target, sharding, release, finite_check=None):
    """Maps the memory-mapped checkpoint view to a device array: whole onto the default device,
    or with a sharding slice by slice, so each device (and host) copies only what it holds.
    finite_check names the tensor in the NaN/Inf error (None: not checked)."""
    if sharding is None:
        # device_put(may_alias=True) adopts the fresh, 64-byte aligned host copy without
        # another copy on CPU (jnp.asarray copied every tensor), so the load holds the
        # converted model plus one chunk of the file, not two copies of a tensor.
        return lambda view: jax.device_put(copy_out(transform.apply(view, shape), target, release,
                                                    finite_check), may_alias=True)
    from gemma3.sharding import put_sharded

    return lambda view: put_sharded(transform.apply(view, shape), target, sharding, release,
                                    finite_check)


def _shardings(model, mesh) -> dict:
    if mesh is None:
        return {}
    from gemma3.sharding import parameter_shardings

    return parameter_shardings(model, mesh)


def plan_load(directory: Path, params: dict, *, skip_vision: bool = False
              ) -> dict[Path_, tuple[TensorInfo, weights.Transform]]:
    """Matches checkpoint tensors to parameters; raises one LoadError listing every problem."""
    tensors = read_tensors(directory)
    return match_tensors(tensors, params, f"checkpoint {directory} does not match its "
                         "config.json", skip_vision=skip_vision)


def match_tensors(tensors: list, params: dict, mismatch: str, *, skip_vision: bool = False,
                  canonical=weights.canonical_name, same_values=None) -> dict:
    """The bijection check shared by every reader. tensors: records with .name, .file and
    .shape (torch's axis order); canonical: file name -> gemma3.weights canonical name;
    same_values(a, b): whether two records hold equal tensors (the tied-head check)."""
    problems, plan, tied = [], {}, []
    for info in tensors:
        name = canonical(info.name)
        if name in weights.TIED_HEADS:
            tied.append(info)
            continue
        if skip_vision and name.startswith(("vision_tower.", "multi_modal_projector.")) \
                or weights.unused(name):
            continue
        found = weights.match(name)
        if found is None or found[0] not in params:
            problems.append(f"unexpected tensor {info.name} in {info.file.name}")
            continue
        path, transform = found
        if path in plan:
            other = plan[path][0]
            problems.append(f"{info.name} in {info.file.name} and {other.name} in "
                            f"{other.file.name} both map to {_dotted(path)}")
            continue
        expected = tuple(transform.source_shape(params[path].shape))
        if tuple(info.shape) != expected:
            problems.append(f"{info.name} in {info.file.name} has shape {list(info.shape)}; the "
                            f"config expects {list(expected)}")
        plan[path] = (info, transform)
    problems += [f"missing tensor for {_dotted(p)}" for p in params if p not in plan]
    problems += _check_tied(tied, plan, same_values or _same_bytes)
    if problems:
        raise LoadError(f"{mismatch} ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    return plan


def _check_tied(tied: list, plan, same_values) -> list[str]:
    """A stored lm_head is accepted only if it is the embedding itself (Gemma 3 ties them)."""
    embed = plan.get(("language_model", "embed_tokens", "weight"))
    problems = []
    for info in tied:
        if embed is None or info.shape != embed[0].shape or not same_values(info, embed[0]):
            problems.append(f"{info.name} in {info.file.name} differs from the embedding; Gemma 3 "
                            "ties the output head to it and an untied head is not supported")
    return problems


def _same_bytes(a: TensorInfo, b: TensorInfo) -> bool:
    with TensorReader() as reader:
        return a.dtype == b.dtype and np.array_equal(reader.read(a), reader.read(b))


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)
