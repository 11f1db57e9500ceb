"""Loading llama.cpp GGUF checkpoints of Gemma 3 (the `gguf` package reads the file).

    model = gemma3.from_pretrained("gemma-3-270m-q4_k_m.gguf", dtype="float32")
    config = gemma3.gguf.read_config(path)          # Gemma3Config (text decoder only)
    mix = gemma3.gguf.tensor_types(path)            # {"F32": 109, "Q5_0": 81, ...}

The file is memory-mapped; each tensor is dequantized with the package's own dequantizer
(`gguf.quants.dequantize`: every type it supports), a chunk of rows at a time into float32,
corrected (norm weights are stored as 1 + w), cast to the target dtype and its file pages
dropped, so peak host memory stays near one copy of the model in the target dtype. Names map
through gemma3.gguf_weights and are checked as a bijection by gemma3.loading.match_tensors.
A GGUF of a 4b+ model holds only the text decoder (the vision tower ships as a separate mmproj
file), so it loads as a text-only model.
"""

from __future__ import annotations

import dataclasses
import functools
import mmap
from collections import Counter
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from gemma3 import gguf_weights
from gemma3.checkpoint import CheckpointError, check_finite
from gemma3.config import Gemma3Config
from gemma3.gguf_config import config_from_metadata
from gemma3.progress import Progress

SUFFIX = ".gguf"
DEQUANT_CHUNK_BYTES = 32 * 2**20  # float32 bytes dequantized at once
STREAMED_TENSOR_BYTES = 64 * 2**20  # larger tensors go to the device chunk by chunk


class GGUFError(CheckpointError):
    """A GGUF file that cannot be read as a Gemma 3 checkpoint."""


def find_gguf(path_or_hub_id) -> Path | None:
    """The GGUF file a checkpoint argument names: a .gguf file, or a directory holding exactly
    one .gguf and no safetensors (a directory with safetensors is a safetensors checkpoint).
    None when it names no GGUF."""
    path = Path(path_or_hub_id).expanduser()
    if path.is_file() and path.suffix == SUFFIX:
        return path
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return None
    found = sorted(path.glob(f"*{SUFFIX}"))
    if len(found) > 1:
        raise GGUFError(f"{path} holds {len(found)} GGUF files ({', '.join(f.name for f in found)});"
                        " pass the one to load as --checkpoint / from_pretrained(path/to/file.gguf)")
    return found[0] if found else None


def _gguf():
    try:
        import gguf
    except ImportError:
        raise GGUFError("reading GGUF files needs the gguf package: pip install 'gguf>=0.17' "
                        "(or gemma3-jax[gguf])") from None
    return gguf


@dataclasses.dataclass(frozen=True)
class GGUFTensor:
    """One tensor of the file, with its shape in torch's axis order (GGUF lists it reversed)."""

    name: str
    file: Path
    shape: tuple[int, ...]
    ggml_type: str
    nbytes: int
    tensor: Any = dataclasses.field(repr=False, compare=False)  # the package's ReaderTensor


@dataclasses.dataclass(frozen=True)
class GGUFFile:
    """What we keep of a parsed file: its metadata, its tensors and the memory map. The
    package's reader itself is dropped: its parsed fields (262k tokens) take ~0.5 GB."""

    path: Path
    metadata: dict[str, Any]
    tensors: list[GGUFTensor]
    data: Any  # the np.memmap of the whole file


@functools.lru_cache(maxsize=1)
def _cached_file(path: str, size: int, mtime_ns: int) -> GGUFFile:
    try:
        reader = _gguf().GGUFReader(path, "r")
    except (ValueError, OSError) as e:
        raise GGUFError(f"{path} could not be read as a GGUF file: {e}") from None
    metadata = {key: field.contents() for key, field in reader.fields.items()
                if not key.startswith("GGUF.")}
    records = [GGUFTensor(t.name, Path(path), tuple(int(d) for d in reversed(t.shape)),
                          t.tensor_type.name, int(t.n_bytes), t) for t in reader.tensors]
    return GGUFFile(Path(path), metadata, records, reader.data)


def open_gguf(path: str | Path) -> GGUFFile:
    """The parsed file (parsing the metadata of a 262k-token vocabulary takes seconds, so the
    last file opened is kept, keyed by path, size and mtime)."""
    path = Path(path)
    stat = path.stat()
    return _cached_file(str(path), stat.st_size, stat.st_mtime_ns)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Every metadata key of the file with its value (strings, numbers, lists)."""
    return dict(open_gguf(path).metadata)


def read_config(path: str | Path, base: Gemma3Config | None = None) -> Gemma3Config:
    """The Gemma3Config of a GGUF file; see gemma3.gguf_config (base: for unreleased sizes)."""
    return config_from_metadata(open_gguf(path).metadata, str(path), base)


def tensor_types(path: str | Path) -> dict[str, int]:
    """How many tensors of each GGML type the file holds, e.g. {"F32": 109, "Q4_K": 27}."""
    counts = Counter(t.ggml_type for t in open_gguf(path).tensors)
    return dict(sorted(counts.items()))


def tensors(path: str | Path) -> list[GGUFTensor]:
    return list(open_gguf(path).tensors)


def supported_types() -> set[str]:
    """The GGML types the package can dequantize."""
    gguf = _gguf()
    types = gguf.GGMLQuantizationType
    return {types.F32.name, types.F16.name} | {t.name for t in gguf.quants._type_traits}


def dequantize(record: GGUFTensor, dtype, release=None, finite_check=None) -> np.ndarray:
    """The tensor in torch's axis order as a new `dtype` array (see _row_chunks)."""
    out = np.empty(record.shape, dtype)
    for start, rows in _row_chunks(record, dtype, release, finite_check):
        out[start:start + len(rows)] = rows
    return out


def _row_chunks(record: GGUFTensor, dtype, release=None, finite_check=None):
    """(first row, rows as `dtype`), dequantized a chunk of rows at a time into float32, then
    corrected and cast, so only a chunk is ever held in float32; norm weights come back as w
    (the file stores 1 + w). `release` runs after each chunk; finite_check names the tensor in
    the NaN/Inf error (None: not checked)."""
    gguf = _gguf()
    data, qtype = record.tensor.data, record.tensor.tensor_type
    shift = gguf_weights.stored_as_one_plus(record.name)
    if len(record.shape) == 0 or 0 in record.shape:
        return
    # Rows of a 2-D (or higher) tensor are whole blocks; a 1-D one is dequantized at once.
    row_bytes = 4 * int(np.prod(record.shape[1:], dtype=np.int64))
    step = max(1, DEQUANT_CHUNK_BYTES // row_bytes) if len(record.shape) > 1 else record.shape[0]
    for start in range(0, record.shape[0], step):
        rows = np.asarray(gguf.quants.dequantize(data[start:start + step], qtype), np.float32)
        # In float32 before the cast, as transformers does (`weights - 1`, then `.to(dtype)`).
        out = np.asarray(rows - np.float32(1) if shift else rows, dtype)
        del rows
        check_finite(out, 0, start, finite_check, record.shape)
        yield start, out
        if release is not None:
            release()


def _releaser(file: GGUFFile, record: GGUFTensor):
    """Drops the tensor's mapped file pages from the process (they are read again if needed)."""
    mm = getattr(file.data, "_mmap", None)
    if mm is None:
        return None
    start = record.tensor.data_offset
    first = start // mmap.PAGESIZE * mmap.PAGESIZE
    return lambda: mm.madvise(mmap.MADV_DONTNEED, first, start + record.nbytes - first)


def _same_values(a: GGUFTensor, b: GGUFTensor) -> bool:
    return np.array_equal(dequantize(a, np.float32), dequantize(b, np.float32))


def plan(path: str | Path, params: dict) -> dict:
    """GGUF tensors matched to parameters (gemma3.loading.match_tensors: one error listing every
    unexpected, missing, misshapen or undecodable tensor)."""
    from gemma3.loading import LoadError, match_tensors

    records = tensors(path)
    known = supported_types()
    bad = [f"{r.name} in {r.file.name} has type {r.ggml_type}, which the gguf package cannot "
           "dequantize" for r in records if r.ggml_type not in known]
    try:
        matched = match_tensors(records, params, f"GGUF file {path} does not match the Gemma 3 "
                                "model its metadata describes",
                                canonical=gguf_weights.canonical_name, same_values=_same_values)
    except LoadError as e:
        if not bad:
            raise
        raise LoadError(f"{e}\n  " + "\n  ".join(bad)) from None
    if bad:
        raise LoadError(f"GGUF file {path} has tensors of unsupported types "
                        f"({len(bad)} problem(s)):\n  " + "\n  ".join(bad))
    return matched


def load_gguf(path: str | Path, dtype, *, config: Gemma3Config | None = None, mesh=None,
              progress: bool | None = None, allow_nonfinite: bool = False):
    """A Gemma3 text model with the weights of a GGUF file (see the module docstring).
    config: what the metadata is checked against and completed from (default: read_config);
    allow_nonfinite as in from_pretrained."""
    from gemma3.loading import _shardings, abstract_params, resolve_dtype

    path = Path(path)
    target = resolve_dtype(dtype)
    config = read_config(path) if config is None else read_config(path, base=config)
    model, graphdef, params = abstract_params(config, target)
    matched = plan(path, params)
    shardings = _shardings(model, mesh)
    file = open_gguf(path)
    total = sum(4 * int(np.prod(r.shape)) for r, _ in matched.values())
    with Progress(f"loading {path.name}", len(matched), total, enabled=progress) as bar:
        for key, (record, transform) in matched.items():
            check = None if allow_nonfinite else f"tensor {record.name} in {path.name}"
            value = _device_tensor(record, transform, params[key].shape, target,
                                   shardings.get(key), _releaser(file, record), check)
            params[key].set_value(value)
            bar.advance(4 * int(np.prod(record.shape)))
    return nnx.merge(graphdef, nnx.from_flat_state(params))


def _device_tensor(record: GGUFTensor, transform, shape, target, sharding, release, check):
    """The parameter on its device(s). A large tensor stored as it is used (the embedding: 63%
    of the 270m) is written into its device buffer chunk by chunk, so it never exists twice;
    others are dequantized on the host, then copied once (device_put: jnp.asarray would copy
    a float32 array twice)."""
    if sharding is None and tuple(shape) == record.shape and (
            np.prod(shape) * np.dtype(target).itemsize > STREAMED_TENSOR_BYTES):
        buffer = jnp.zeros(shape, target)
        for start, rows in _row_chunks(record, target, release, check):
            buffer = _write_rows(buffer, jax.device_put(rows), start)
        return buffer
    host = transform.apply(dequantize(record, target, release, check), shape)
    if sharding is None:
        return jax.device_put(host)
    from gemma3.sharding import put_sharded

    return put_sharded(host, target, sharding)


@functools.partial(jax.jit, donate_argnums=0)
def _write_rows(buffer, rows, start):
    # Donated, so XLA updates the buffer in place.
    return jax.lax.dynamic_update_slice_in_dim(buffer, rows, start, axis=0)
