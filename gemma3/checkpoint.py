"""Reading safetensors checkpoints: headers checked up front, tensors memory-mapped one at a time.

We parse the format ourselves (an 8-byte little-endian header length, a JSON header, raw data)
so that every problem names the file and tensor, and so that bf16 maps to ml_dtypes without torch.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import struct
from pathlib import Path

import ml_dtypes
import numpy as np

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
DTYPES = {
    "BF16": np.dtype(ml_dtypes.bfloat16), "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
}
MAX_HEADER_BYTES = 100 * 2**20  # the format's own limit
COPY_CHUNK_BYTES = 32 * 2**20  # file bytes resident at once while a tensor is copied out


class CheckpointError(ValueError):
    """A checkpoint directory or file that cannot be read as a Gemma 3 safetensors checkpoint."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    file: Path
    dtype: np.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    nbytes: int


def shard_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory (sharded index or a single file)."""
    index = directory / INDEX_FILE
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index} is not a valid safetensors index "
                                  f"(expected JSON with a 'weight_map'): {e}") from None
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not (directory / f).exists()]
        if missing:
            raise CheckpointError(f"{index} lists shard(s) missing from {directory}: "
                                  f"{', '.join(missing)}. Download them again.")
        return [directory / f for f in files]
    if (directory / SINGLE_FILE).exists():
        return [directory / SINGLE_FILE]
    raise CheckpointError(f"no {SINGLE_FILE} or {INDEX_FILE} in {directory}")


def read_header(path: Path) -> list[TensorInfo]:
    """Parses and checks one file's header: every tensor's bytes must lie inside the file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is truncated: {size} bytes, too short for a header")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path} is corrupt or truncated: header length {header_len} "
                                  f"does not fit in a file of {size} bytes")
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path} has a corrupt header (not JSON): {e}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a corrupt header: expected a JSON object")
    data_start, data_len = 8 + header_len, size - 8 - header_len
    return [_tensor_info(path, name, entry, data_start, data_len)
            for name, entry in header.items() if name != "__metadata__"]


def _tensor_info(path: Path, name: str, entry, data_start: int, data_len: int) -> TensorInfo:
    try:
        dtype_name, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        shape = tuple(int(d) for d in shape)
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: header entry for {name!r} is malformed: {entry!r}") from None
    if dtype_name not in DTYPES:
        raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype_name}; expected one of "
                              f"{', '.join(DTYPES)}")
    dtype = DTYPES[dtype_name]
    expected = int(np.prod(shape)) * dtype.itemsize
    if not (0 <= begin <= end <= data_len) or end - begin != expected:
        raise CheckpointError(
            f"{path}: tensor {name!r} ({dtype_name} {list(shape)}) has data_offsets "
            f"[{begin}, {end}] but needs {expected} bytes inside {data_len} bytes of data: "
            "the file is truncated or corrupt")
    return TensorInfo(name, path, dtype, shape, data_start + begin, expected)


class TensorReader:
    """Memory-maps each file once; `read` copies one tensor out and drops its pages from the
    process, so the resident set stays near the converted model, not model + file."""

    def __init__(self):
        self._maps: dict[Path, mmap.mmap] = {}

    def read(self, info: TensorInfo, convert=np.array) -> np.ndarray:
        """`convert` maps the mapped view to a new array (transposed, cast): one copy in all."""
        mm = self._maps.get(info.file)
        if mm is None:
            with info.file.open("rb") as f:
                mm = self._maps[info.file] = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        view = np.frombuffer(mm, info.dtype, int(np.prod(info.shape)), info.start)
        array = convert(view.reshape(info.shape))
        del view
        self.release(info)
        return array

    def release(self, info: TensorInfo) -> None:
        """Drops the tensor's mapped pages from the process (a later read maps them again);
        `convert` may call it between chunks to keep at most a chunk of the file resident."""
        mm = self._maps.get(info.file)
        if mm is not None:
            first = info.start // mmap.PAGESIZE * mmap.PAGESIZE
            mm.madvise(mmap.MADV_DONTNEED, first, info.start + info.nbytes - first)

    def close(self) -> None:
        for mm in self._maps.values():
            mm.close()
        self._maps.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def aligned_empty(shape, dtype, alignment: int = 64) -> np.ndarray:
    """np.empty on a 64-byte boundary: XLA:CPU adopts such a buffer without copying it
    (jax.device_put(may_alias=True)); numpy's own large allocations sit 16 bytes off one."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def copy_out(view: np.ndarray, dtype, release=None) -> np.ndarray:
    """view (of the mapped file, maybe transposed) as a new C-ordered array of `dtype`, copied
    in chunks along its file-major axis (the largest stride), calling `release` after each
    chunk so at most a chunk of the file is resident besides the copy."""
    if release is None or view.ndim == 0 or view.size == 0:
        return np.array(view, dtype=dtype, order="C")
    out = aligned_empty(view.shape, dtype)
    axis = int(np.argmax(np.abs(view.strides)))
    step = max(1, COPY_CHUNK_BYTES // max(abs(view.strides[axis]), 1))
    for start in range(0, view.shape[axis], step):
        chunk = (slice(None),) * axis + (slice(start, start + step),)
        out[chunk] = view[chunk]
        release()
    return out
