"""The safetensors reader: headers checked up front, tensors memory-mapped one at a time.

We parse the format ourselves (an 8-byte little-endian header length, a JSON header, raw data)
so that every problem names the file and tensor, and so that bf16 maps to ml_dtypes without torch.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import mmap
import struct
from pathlib import Path, PurePosixPath

import ml_dtypes
import numpy as np

from gemma3.ckpt.errors import CheckpointError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
DTYPES = {
    "BF16": np.dtype(ml_dtypes.bfloat16), "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
}
MAX_HEADER_BYTES = 100 * 2**20  # the format's own limit


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    file: Path
    dtype: np.dtype
    shape: tuple[int, ...]
    start: int  # absolute byte offset in the file
    nbytes: int


def exists(path: Path) -> bool:
    """Path.exists, except that a symlink loop is an error that names the looping link
    (Path.exists says False, which would read as "missing")."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
        loop = next((p for p in reversed([path, *path.parents]) if _loops(p)), path)
        raise CheckpointError(f"symlink loop at {loop}: it points (through other links) back "
                              "to itself; replace it with the file or directory it "
                              "should name") from None
    return True


def _loops(path: Path) -> bool:
    try:
        path.stat()
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def read_index(directory: Path) -> dict[str, str] | None:
    """The index's weight_map (tensor name -> shard file), or None for a single-file
    checkpoint. Shard paths must be relative and stay inside the directory."""
    index = directory / INDEX_FILE
    if not exists(index):
        return None
    try:
        weight_map = json.loads(index.read_bytes().decode("utf-8"))["weight_map"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index} is not a valid safetensors index "
                              f"(expected JSON with a 'weight_map'): {e}") from None
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index} weight_map is a JSON {type(weight_map).__name__}; "
                              "expected an object mapping tensor names to shard files")
    problems = [f"weight_map[{name!r}] = {file!r}: {why}"
                for name, file in weight_map.items() if (why := _bad_shard_path(file))]
    if problems:
        raise CheckpointError(f"{index} has {len(problems)} bad shard path(s):\n  "
                              + "\n  ".join(problems))
    return weight_map


def _bad_shard_path(file) -> str | None:
    """Why `file` cannot name a shard inside the checkpoint directory, or None."""
    if not isinstance(file, str) or not file:
        return "expected a file name such as 'model-00001-of-00002.safetensors'"
    parts = PurePosixPath(file.replace("\\", "/")).parts
    if file.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        return "a shard must lie inside the checkpoint directory (no absolute path, no '..')"
    return None


def shard_files(directory: Path) -> list[Path]:
    """The safetensors files of a checkpoint directory (sharded index or a single file)."""
    return _shard_files(directory, read_index(directory))


def _shard_files(directory: Path, weight_map: dict[str, str] | None) -> list[Path]:
    if weight_map is not None:
        files = sorted(set(weight_map.values()))
        missing = [f for f in files if not exists(directory / f)]
        if missing:
            raise CheckpointError(f"{directory / INDEX_FILE} lists shard(s) missing from "
                                  f"{directory}: {', '.join(missing)}. Download them again.")
        return [directory / f for f in files]
    if exists(directory / SINGLE_FILE):
        return [directory / SINGLE_FILE]
    raise CheckpointError(f"no {SINGLE_FILE} or {INDEX_FILE} in {directory}")


def read_tensors(directory: Path) -> list[TensorInfo]:
    """Every tensor's header entry in every shard, checked against the index's weight_map:
    each listed tensor in its listed shard, and each shard's tensors listed; one error lists
    every disagreement."""
    weight_map = read_index(directory)
    tensors = [info for f in _shard_files(directory, weight_map) for info in read_header(f)]
    if weight_map is None:
        return tensors
    problems, found = [], set()
    for info in tensors:
        found.add(info.name)
        listed = weight_map.get(info.name)
        if listed is None:
            problems.append(f"{info.name} is in {info.file.name} but not in the weight_map")
        elif directory / listed != info.file:
            problems.append(f"{info.name} is in {info.file.name}, but the weight_map puts it "
                            f"in {listed}")
    problems += [f"{name} is listed in {file} but no shard holds it"
                 for name, file in weight_map.items() if name not in found]
    if problems:
        raise CheckpointError(f"{directory / INDEX_FILE} disagrees with the shards "
                              f"({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    return tensors


def read_header(path: Path) -> list[TensorInfo]:
    """Parses and checks one file's header: every tensor's bytes must lie inside the file."""
    exists(path)  # a symlink loop is named as such
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
    infos = [_tensor_info(path, name, entry, data_start, data_len)
             for name, entry in header.items() if name != "__metadata__"]
    _check_no_overlap(path, infos)
    return infos


def _check_no_overlap(path: Path, infos: list[TensorInfo]) -> None:
    """Two tensors sharing bytes would alias each other's values: the file is corrupt."""
    problems, reach = [], None  # reach: the tensor seen so far that ends last
    for info in sorted((i for i in infos if i.nbytes), key=lambda i: i.start):
        if reach is not None and info.start < reach.start + reach.nbytes:
            problems.append(f"{reach.name!r} [{reach.start}, {reach.start + reach.nbytes}) and "
                            f"{info.name!r} [{info.start}, {info.start + info.nbytes})")
        if reach is None or info.start + info.nbytes > reach.start + reach.nbytes:
            reach = info
    if problems:
        raise CheckpointError(f"{path} is corrupt: tensors' data ranges overlap (byte offsets "
                              "in the file): " + "; ".join(problems))


def _tensor_info(path: Path, name: str, entry, data_start: int, data_len: int) -> TensorInfo:
    try:
        dtype_name, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        shape = tuple(int(d) for d in shape)
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{path}: header entry for {name!r} is malformed: {entry!r}") from None
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

    def __init__(self) -> None:
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
            try:
                mm.close()
            except BufferError:  # an exception's traceback still holds a view of it: the map
                pass  # is closed when that view is freed
        self._maps.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def same_tensor(a: TensorInfo, b: TensorInfo) -> bool:
    """Whether two tensors hold the same values (the tied-head check)."""
    with TensorReader() as reader:
        return a.dtype == b.dtype and np.array_equal(reader.read(a), reader.read(b))
