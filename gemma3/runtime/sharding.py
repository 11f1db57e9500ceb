"""Multi-device layout: a ('fsdp', 'tp') mesh and the PartitionSpec of every parameter, of the
KV cache and of the activations. JAX's SPMD partitioner does the rest: parameters carry
NamedShardings and jit propagates them through the unchanged model code.

Which mesh axis splits what (axis letters of gemma3.nn.layers):
  tp    N query heads, K kv heads, F MLP hidden width, V vocabulary rows of the embedding (so
        the tied output head yields logits split over the vocabulary)
  fsdp  D model width of every text weight, C width of every vision weight; B batch of the
        activations and of the KV cache
  none  H head dim, T/S lengths, P patches, norms and biases over D or C (small: replicated)

GQA policy: kv heads are split on tp when tp divides K. When it does not (270m and 1b have
one kv head; 4b has four, so tp=8) k_proj, v_proj and the KV cache are replicated over tp while
the query heads stay split: each device computes the few kv heads its query heads read, the
same choice vLLM and MaxText make. The batch is likewise replicated when fsdp does not divide
it. Any other axis a mesh does not divide is an error that names the parameter.
"""

from __future__ import annotations

import math
import re

import jax
import numpy as np
from flax import nnx
from jax.sharding import AbstractMesh, AxisType, Mesh, NamedSharding, PartitionSpec

from gemma3.config.errors import InputError
from gemma3.runtime.distributed import initialize_distributed

__all__ = [
    "ShardingError", "activation_sharding", "bytes_per_device", "cache_shardings",
    "constrain_cache", "default_mesh", "initialize_distributed", "make_mesh", "model_mesh",
    "parameter_shardings", "parameter_specs", "to_numpy",
]

FSDP, TP = "fsdp", "tp"
AXES = (FSDP, TP)
# A parameter path, e.g. ('language_model', 'layers', 0, 'mlp', 'up_proj', 'kernel').
ParamPath = tuple

# Mesh axis of each logical axis ('_' and letters not listed are never split).
PARAM_AXIS = {"V": TP, "N": TP, "K": TP, "F": TP, "D": FSDP, "C": FSDP}
ACTIVATION_AXIS = {"B": FSDP, "N": TP, "K": TP, "F": TP, "V": TP}
REPLICATE_IF_INDIVISIBLE = frozenset("KB")  # the GQA policy above; batch sizes vary per call

# Logical axes of each weight, keyed by its tower and the last two parts of its path.
WEIGHT_AXES = {
    "language_model": {
        ("embed_tokens", "weight"): "VD",
        ("q_proj", "kernel"): "NHD", ("k_proj", "kernel"): "KHD", ("v_proj", "kernel"): "KHD",
        ("o_proj", "kernel"): "DNH",
        ("gate_proj", "kernel"): "FD", ("up_proj", "kernel"): "FD", ("down_proj", "kernel"): "DF",
    },
    "vision_tower": {
        ("patch_embedding", "kernel"): "___C", ("position_embedding", "weight"): "PC",
        ("q_proj", "kernel"): "NHC", ("k_proj", "kernel"): "NHC", ("v_proj", "kernel"): "NHC",
        ("q_proj", "bias"): "NH", ("k_proj", "bias"): "NH", ("v_proj", "bias"): "NH",
        ("out_proj", "kernel"): "CNH",
        ("fc1", "kernel"): "FC", ("fc1", "bias"): "F", ("fc2", "kernel"): "CF",
    },
    # [C, D]: D on fsdp as in the decoder; C (1152) stays whole, fsdp cannot split both.
    "multi_modal_projector": {("multi_modal_projector", "mm_input_projection_weight"): "_D"},
}
LETTER_NAMES = {"V": "vocabulary", "N": "query heads", "K": "kv heads", "F": "MLP hidden width",
                "D": "model width", "C": "vision width", "B": "batch"}


class ShardingError(InputError):
    """A mesh that does not divide the model."""


# ---------------------------------------------------------------------------------------------
# Meshes


def make_mesh(fsdp: int | None = None, tp: int = 1, *, devices=None) -> Mesh:
    """A mesh with axes ('fsdp', 'tp') over the devices present (or `devices`): by default
    every device on fsdp; fsdp * tp smaller than the device count uses the first ones. Keep tp
    within one host: it communicates every layer, fsdp less often."""
    devices = list(jax.devices() if devices is None else devices)
    fsdp = len(devices) // tp if fsdp is None else fsdp
    if fsdp < 1 or tp < 1 or fsdp * tp > len(devices):
        raise ShardingError(f"make_mesh(fsdp={fsdp}, tp={tp}) needs fsdp * tp devices, and "
                            f"{len(devices)} are present; pick fsdp and tp >= 1 whose product is "
                            f"at most {len(devices)}")
    # Auto axes: the model code is unannotated and relies on GSPMD propagation.
    return jax.make_mesh((fsdp, tp), AXES, (AxisType.Auto,) * 2, devices=devices[:fsdp * tp])


def default_mesh(devices=None) -> Mesh | None:
    """The mesh from_pretrained should use on this machine: None on a single device (the plain
    unsharded path), else every device on fsdp."""
    devices = list(jax.devices() if devices is None else devices)
    return make_mesh(devices=devices) if len(devices) > 1 else None


def _auto(mesh: Mesh) -> Mesh:
    """The mesh with Auto axis types (jax.make_mesh makes Explicit ones by default), checked to
    carry the axes this module names."""
    if set(mesh.axis_names) != set(AXES):
        raise ShardingError(f"the mesh has axes {mesh.axis_names}; expected {AXES} (either may "
                            "have size 1). Build one with gemma3.sharding.make_mesh(fsdp, tp).")
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def model_mesh(model) -> Mesh | AbstractMesh | None:
    """The mesh a model's parameters live on, or None for an unsharded model."""
    # A NamedSharding may hold an AbstractMesh (shapes only, as under tracing): returned as is.
    for _, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        sharding = getattr(value.get_value(), "sharding", None)
        if isinstance(sharding, NamedSharding) and sharding.mesh.size > 1:
            return sharding.mesh
    return None


# ---------------------------------------------------------------------------------------------
# Partition rules


def logical_spec(letters: str, shape, sizes: dict[str, int], table: dict[str, str],
                 name: str, problems: list[str]) -> PartitionSpec:
    """The PartitionSpec of an array whose axes are `letters`; appends to `problems` for an axis
    its mesh axis does not divide (unless it falls back to replication)."""
    spec: list[str | None] = []
    for letter, dim in zip(letters, shape, strict=True):
        axis = table.get(letter)
        size = 1 if axis is None else sizes.get(axis, 1)
        if axis is None or size == 1 or axis in spec:
            spec.append(None)
        elif dim % size == 0:
            spec.append(axis)
        else:
            spec.append(None)
            if letter not in REPLICATE_IF_INDIVISIBLE:
                problems.append(_indivisible(name, letter, dim, axis, size))
    return PartitionSpec(*spec)


def _indivisible(name: str, letter: str, dim: int, axis: str, size: int) -> str:
    fits = [d for d in range(1, dim + 1) if dim % d == 0 and d <= 64]
    return (f"{name}: its {LETTER_NAMES.get(letter, letter)} axis ({letter}) has size {dim}, "
            f"which mesh axis '{axis}' of size {size} does not divide; use {axis} in {fits}")


def weight_axes(path: ParamPath, ndim: int) -> str | None:
    """Logical axes of the parameter at `path`; None means replicated (1-D norms and biases)."""
    letters = WEIGHT_AXES.get(path[0], {}).get(tuple(path[-2:]))
    if letters is None and ndim > 1:
        raise ShardingError(f"no partition rule for {_dotted(path)} ({ndim}-D): add its logical "
                            "axes to gemma3.sharding.WEIGHT_AXES")
    return letters


def parameter_specs(model, sizes: dict[str, int]) -> dict[ParamPath, PartitionSpec]:
    """PartitionSpec of every parameter of `model` (real or from nnx.eval_shape) for mesh axis
    sizes such as {'fsdp': 2, 'tp': 4}. Raises one ShardingError listing every parameter kind
    the mesh does not divide."""
    specs: dict[ParamPath, PartitionSpec] = {}
    problems: list[str] = []
    for path, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        letters = weight_axes(path, len(value.shape))
        specs[path] = PartitionSpec() if letters is None else logical_spec(
            letters, value.shape, sizes, PARAM_AXIS, _kind(path), problems)
    if problems:
        unique = list(dict.fromkeys(problems))
        raise ShardingError(f"the mesh {dict(sizes)} does not divide the model "
                            f"({len(unique)} problem(s)):\n  " + "\n  ".join(unique))
    return specs


def parameter_shardings(model, mesh: Mesh) -> dict[ParamPath, NamedSharding]:
    """NamedSharding of every parameter on `mesh` (what from_pretrained(mesh=...) places)."""
    mesh = _auto(mesh)
    specs = parameter_specs(model, dict(mesh.shape))
    return {path: NamedSharding(mesh, spec) for path, spec in specs.items()}


def bytes_per_device(model, sizes: dict[str, int]) -> int:
    """Parameter bytes the busiest device holds under these mesh axis sizes; works on an
    nnx.eval_shape model, so nothing is allocated."""
    specs = parameter_specs(model, sizes)
    total = 0
    for path, value in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        shard = shard_shape(value.shape, specs[path], sizes)
        total += math.prod(shard) * np.dtype(value.dtype).itemsize
    return total


def shard_shape(shape, spec: PartitionSpec, sizes: dict[str, int]) -> tuple[int, ...]:
    """The shape each device holds of an array of `shape` split by `spec`."""
    parts = [math.prod(sizes[a] for a in ((p,) if isinstance(p, str) else p)) if p else 1
             for p in tuple(spec) + (None,) * (len(shape) - len(spec))]
    return tuple(d // n for d, n in zip(shape, parts, strict=True))


def _kind(path: ParamPath) -> str:
    """A parameter's dotted path with layer indices as '*', so a problem is listed once."""
    return re.sub(r"\.\d+\.", ".*.", _dotted(path))


def _dotted(path: ParamPath) -> str:
    return ".".join(str(p) for p in path)


# ---------------------------------------------------------------------------------------------
# KV cache and activations


def activation_sharding(letters: str, shape, mesh: Mesh) -> NamedSharding:
    """The sharding of an activation whose axes are `letters` ('BTD', 'BTV', 'BSKH', ...):
    batch on fsdp, heads, hidden width and vocabulary on tp, each only where it divides."""
    mesh = _auto(mesh)
    spec = logical_spec(letters, shape, dict(mesh.shape), ACTIVATION_AXIS, letters, [])
    return NamedSharding(mesh, spec)


def cache_shardings(cache, mesh: Mesh):
    """A pytree of NamedShardings matching a KVCache: keys [B, K, S, H] and values
    [B, K, H, S] split on batch (fsdp) and kv heads (tp) where those divide, else replicated;
    key_valid [B, S] on batch."""
    letters = {4: "BK__", 2: "BS", 0: ""}
    return jax.tree.map(lambda x: activation_sharding(letters[x.ndim], x.shape, mesh), cache)


def constrain_cache(cache, mesh: Mesh | None):
    """Inside jit: pins the cache to cache_shardings (a no-op without a mesh). Propagation
    already splits kv heads on tp; pinning also splits the batch, which pays off only when the
    prompt activations are batch-split too."""
    if mesh is None:
        return cache
    return jax.lax.with_sharding_constraint(cache, cache_shardings(cache, mesh))


def to_numpy(x: jax.Array) -> np.ndarray:
    """The whole of an array as numpy on every process. np.asarray suffices on one host; an
    array split across hosts (e.g. vocab-split logits) is gathered first."""
    if x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
