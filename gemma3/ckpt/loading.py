"""`from_pretrained`: a checkpoint directory, hub id or GGUF file -> a Gemma3 module with its
weights.

The orchestrator: it reads the config, builds the abstract model, asks the format's reader
(gemma3.ckpt.safetensors or gemma3.ckpt.gguf) for its tensors, checks them against the model's
parameters as a bijection before any tensor is read (gemma3.ckpt.weights.match_tensors: every
checkpoint tensor used once, every parameter set once, shapes checked, all problems reported
together), then hands them one at a time to the placer (gemma3.ckpt.placement), so peak host
memory stays near one copy of the model in the target dtype. No reader imports this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
from pathlib import Path
from typing import cast

import jax
import numpy as np
from flax import nnx

from gemma3.ckpt import weights
from gemma3.ckpt.errors import CheckpointError
from gemma3.ckpt.gguf.config import read_config
from gemma3.ckpt.gguf.file import dequantized, find_gguf, open_gguf, releaser, row_chunks
from gemma3.ckpt.gguf.file import plan as plan_gguf
from gemma3.ckpt.hub import resolve_checkpoint
from gemma3.ckpt.placement import Placer
from gemma3.ckpt.safetensors import TensorReader, exists, read_tensors, same_tensor
from gemma3.config import Gemma3Config, resolve_dtype
from gemma3.nn.model import Gemma3
from gemma3.runtime.progress import Progress
from gemma3.runtime.sharding import parameter_shardings


def load_config(directory: Path) -> Gemma3Config:
    """The checked config of a checkpoint directory's config.json."""
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
    return Gemma3Config.from_hf_config(raw, source=str(path))


@contextlib.contextmanager
def _gc_paused():
    """Python's cyclic GC off while a model loads: each full collection walked every object of
    the process again (jax's, flax's, the traced abstract model's), 0.1-0.2 s of the real
    270m's 1 s GGUF load (medians of 5 fresh processes: float32 1.26 -> 1.06 s, bfloat16
    1.08 -> 0.95 s). What the load leaves as garbage is collected once it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_gc_paused()
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
    gguf_file = find_gguf(path_or_hub_id)
    if gguf_file is not None:
        return load_gguf(gguf_file, target, mesh=mesh, progress=progress,
                         allow_nonfinite=allow_nonfinite)
    directory = resolve_checkpoint(path_or_hub_id, revision=revision)
    config = load_config(directory)
    if text_only:
        config = dataclasses.replace(config, vision=None)
    model, graphdef, params = abstract_params(config, target)
    plan = weights.match_tensors(read_tensors(directory), params,
                                 f"checkpoint {directory} does not match its config.json",
                                 skip_vision=text_only, same_values=same_tensor)
    placer = Placer(target, _shardings(model, mesh))
    with TensorReader() as reader, Progress(f"loading {directory.name}", len(plan),
                                            sum(i.nbytes for i, _ in plan.values()),
                                            enabled=progress) as bar:
        for key, (info, transform) in plan.items():
            check = None if allow_nonfinite else f"tensor {info.name} in {info.file.name}"
            shape = params[key].shape

            def place(view, key=key, info=info, transform=transform, shape=shape, check=check):
                return placer.from_view(key, transform.apply(view, shape),
                                        lambda: reader.release(info), check)

            params[key].set_value(reader.read(info, place))
            bar.advance(info.nbytes)
    return nnx.merge(graphdef, nnx.from_flat_state(params))


@_gc_paused()
def load_gguf(path: str | Path, dtype, *, config: Gemma3Config | None = None, mesh=None,
              progress: bool | None = None, allow_nonfinite: bool = False) -> Gemma3:
    """A Gemma3 text model with the weights of a GGUF file. config: what the metadata is checked
    against and completed from (default: the released size whose shapes match); mesh, progress
    and allow_nonfinite as in from_pretrained."""
    path = Path(path)
    target = resolve_dtype(dtype)
    config = read_config(path, base=config)
    model, graphdef, params = abstract_params(config, target)
    matched = plan_gguf(path, params)
    placer = Placer(target, _shardings(model, mesh))
    file = open_gguf(path)
    checks = {key: None if allow_nonfinite else f"tensor {record.name} in {path.name}"
              for key, (record, _) in matched.items()}
    # Off CPU, a large tensor stored as it is used (the embedding: 63% of the 270m) streams into
    # its device buffer, so it never exists twice in host memory; the others (every tensor on
    # CPU, whose device buffer is the host array) are dequantized on the host, ahead of their
    # turn.
    streamed = {key for key, (record, _) in matched.items()
                if placer.streams(key, params[key].shape) and tuple(params[key].shape) == record.shape}
    hosts = dequantized(((record, releaser(file, record), checks[key])
                         for key, (record, _) in matched.items() if key not in streamed), target)
    total = sum(4 * int(np.prod(r.shape)) for r, _ in matched.values())
    with (Progress(f"loading {path.name}", len(matched), total, enabled=progress) as bar,
          contextlib.closing(hosts)):
        for key, (record, transform) in matched.items():
            shape = params[key].shape
            if key in streamed:
                rows = row_chunks(record, target, releaser(file, record), checks[key])
                value = placer.from_rows(shape, rows)
            else:
                value = placer.from_host(key, transform.apply(next(hosts), shape))
            params[key].set_value(value)
            bar.advance(4 * int(np.prod(record.shape)))
    return nnx.merge(graphdef, nnx.from_flat_state(params))


def abstract_params(config: Gemma3Config, target) -> tuple:
    """The abstract model, its graphdef and its flat parameter dict (shapes only, nothing
    allocated)."""
    keys = cast(nnx.Rngs, _ShapeOnlyKeys())  # the layers only call rngs.params()
    model = nnx.eval_shape(lambda: Gemma3(config, dtype=target, rngs=keys))
    graphdef, state = nnx.split(model)
    return model, graphdef, dict(nnx.to_flat_state(state))


class _ShapeOnlyKeys:
    """What the layers draw their initial weights from when only shapes are wanted: one fixed
    key, with no counter to advance. Advancing nnx.Rngs' counter inside the trace makes flax
    ask each traced value for its sharding, and jax answers with an error message it builds
    by searching the whole trace: 60% of the 270m's abstract model (0.5 s), more the more
    layers."""

    def params(self):
        return jax.random.key(0)


def _shardings(model, mesh) -> dict:
    return {} if mesh is None else parameter_shardings(model, mesh)
