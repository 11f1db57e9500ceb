"""The GGUF reader: metadata and tensor records from gemma3.ckpt.gguf.extent's one pass over
the file (the `gguf` package's reader only for what that pass leaves to it: GGUF v1,
big-endian files), and each tensor dequantized (our own kernels for Q8_0 and Q5_0, the
package's per-type kernels for every other type it supports) a chunk of rows at a time into
float32, corrected (norm weights are stored as 1 + w) and cast to the target dtype, the chunks
of the whole file on one pool of threads, each tensor's file pages dropped once it is done
(`dequantized`; `row_chunks` for a tensor streamed to an accelerator). Names map through
gemma3.ckpt.gguf.names and are checked as a bijection by gemma3.ckpt.weights.match_tensors
(`plan`); gemma3.ckpt.loading puts the tensors on the devices.
"""

from __future__ import annotations

import dataclasses
import functools
import mmap
import os
from collections import Counter, deque
from collections.abc import Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from gemma3.ckpt.errors import CheckpointError, LoadError
from gemma3.ckpt.gguf import names
from gemma3.ckpt.gguf.extent import check_extent, read_layout
from gemma3.ckpt.host_copy import check_finite, host_buffer
from gemma3.ckpt.weights import match_tensors

SUFFIX = ".gguf"
# float32 bytes dequantized at once: a chunk's temporaries stay in cache (2 MiB was a little
# faster than 32 MiB for the real 270m), and a tensor splits into chunks for every core.
DEQUANT_CHUNK_BYTES = 2 * 2**20
DEQUANT_AHEAD_BYTES = 256 * 2**20  # output bytes dequantized ahead of the tensor being placed


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
        raise GGUFError(f"{path} holds {len(found)} GGUF files "
                        f"({', '.join(f.name for f in found)}); pass the one to load as "
                        "--checkpoint / from_pretrained(path/to/file.gguf)")
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
    """One tensor of the file, with its shape in torch's axis order (GGUF lists it reversed).
    data: its bytes in the memory map, as the package's reader shapes them (typed elements for
    float and integer types, [..., bytes per row] uint8 blocks for quantized ones)."""

    name: str
    file: Path
    shape: tuple[int, ...]
    ggml_type: str
    nbytes: int
    offset: int  # of its data in the file
    qtype: Any = dataclasses.field(repr=False, compare=False)  # gguf.GGMLQuantizationType
    data: Any = dataclasses.field(repr=False, compare=False)


@dataclasses.dataclass(frozen=True)
class GGUFFile:
    """What we keep of a parsed file: its metadata, its tensors and the memory map. The
    package's reader itself is dropped: its parsed fields (262k tokens) take ~0.5 GB."""

    path: Path
    metadata: dict[str, Any]
    tensors: list[GGUFTensor]
    data: Any  # the np.memmap of the whole file


def check_whole(path: str | Path) -> None:
    """Refuses a file cut short (gemma3.ckpt.gguf.extent), before any reader parses it."""
    check_extent(path, _gguf().GGML_QUANT_SIZES)


# Element types of the tensor types the package's reader gives as typed arrays, not bytes.
_ELEMENT_TYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8,
                  "I16": np.int16, "I32": np.int32, "I64": np.int64}


@functools.lru_cache(maxsize=1)
def _cached_file(path: str, size: int, mtime_ns: int) -> GGUFFile:
    gguf = _gguf()
    layout = read_layout(path, gguf.GGML_QUANT_SIZES)
    if layout is None:  # GGUF v1, big-endian, or no GGUF at all: the package decides
        return _package_read(path)
    data = np.memmap(path, mode="r")
    records, seen = [], set()
    for entry in layout.tensors:
        if entry.name in seen:
            raise GGUFError(f"{path} holds tensor {entry.name!r} twice")
        seen.add(entry.name)
        try:
            qtype = gguf.GGMLQuantizationType(entry.ggml_type)
        except ValueError:
            raise GGUFError(f"{path}: tensor {entry.name!r} has GGML type {entry.ggml_type}, "
                            "which the gguf package does not know") from None
        records.append(_record(Path(path), entry, qtype, data, gguf))
    metadata = {k: v for k, v in layout.metadata.items() if not k.startswith("GGUF.")}
    return GGUFFile(Path(path), metadata, records, data)


def _record(path: Path, entry, qtype, data, gguf) -> GGUFTensor:
    """The tensor's record and its bytes, viewed as the package's reader views them."""
    shape = tuple(int(d) for d in reversed(entry.dims))
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    elements = int(np.prod(entry.dims, dtype=np.int64))
    nbytes = elements * type_size // block
    raw = data[entry.offset:entry.offset + nbytes]
    if qtype.name in _ELEMENT_TYPES:
        view = raw.view(_ELEMENT_TYPES[qtype.name]).reshape(shape)
    else:
        view = raw.reshape(gguf.quant_shape_to_byte_shape(shape, qtype))
    return GGUFTensor(entry.name, path, shape, qtype.name, nbytes, entry.offset, qtype, view)


def _package_read(path: str) -> GGUFFile:
    try:
        reader = _gguf().GGUFReader(path, "r")
    except (ValueError, OSError) as e:
        raise GGUFError(f"{path} could not be read as a GGUF file: {e}") from None
    metadata = {key: field.contents() for key, field in reader.fields.items()
                if not key.startswith("GGUF.")}
    records = [GGUFTensor(t.name, Path(path), tuple(int(d) for d in reversed(t.shape)),
                          t.tensor_type.name, int(t.n_bytes), int(t.data_offset), t.tensor_type,
                          t.data) for t in reader.tensors]
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
    """The tensor in torch's axis order as a new, page-aligned `dtype` array (XLA:CPU adopts
    it without a copy); see dequantized."""
    return next(dequantized([(record, release, finite_check)], dtype))


def dequantized(jobs: Iterable[tuple], dtype) -> Generator[np.ndarray, None, None]:
    """Each job's tensor (jobs: (record, release, finite_check), in load order) as dequantize
    returns it, one at a time and in order, while the row chunks of the tensors after it (up
    to DEQUANT_AHEAD_BYTES of them) are already being dequantized on all the cores this
    process may use: the kernels are numpy, which drops the GIL, and one pool for the whole
    file keeps both cores busy where a pool per tensor waited at each small one (the real 270m
    in 0.50-0.69 s against 0.63-1.13 s, 2 cores of an AMD EPYC). A bad chunk's error is raised
    for the first tensor, and the first chunk in it, that holds one; `release` runs once the
    tensor is done; see row_chunks for the rest."""
    with ThreadPoolExecutor(_cores()) as pool:
        pending: deque[tuple[np.ndarray, list[Future], Any]] = deque()
        try:
            for record, release, finite_check in jobs:
                out = host_buffer(record.shape, dtype)
                chunks = [pool.submit(_fill, out, record, rows, finite_check)
                          for rows in _chunk_slices(record)]
                pending.append((out, chunks, release))
                while sum(job[0].nbytes for job in list(pending)[1:]) > DEQUANT_AHEAD_BYTES:
                    yield _finished(*pending.popleft())
            while pending:
                yield _finished(*pending.popleft())
        finally:  # an error, or a caller that stopped early: the rest is not dequantized
            pool.shutdown(cancel_futures=True)


def _fill(out: np.ndarray, record: GGUFTensor, rows: slice, finite_check) -> None:
    out[rows] = _rows(record, rows, out.dtype)
    check_finite(out[rows], 0, rows.start, finite_check, record.shape)


def _finished(out: np.ndarray, chunks: list[Future], release) -> np.ndarray:
    for chunk in chunks:  # in order: the first bad chunk is the one named
        chunk.result()
    if release is not None:
        release()
    return out


def row_chunks(record: GGUFTensor, dtype, release=None, finite_check=None):
    """(first row, rows as `dtype`), dequantized a chunk of rows at a time into float32, then
    corrected and cast, so only a chunk is ever held in float32; norm weights come back as w
    (the file stores 1 + w). `release` runs after each chunk; finite_check names the tensor in
    the NaN/Inf error (None: not checked)."""
    for rows in _chunk_slices(record):
        out = _rows(record, rows, dtype)
        check_finite(out, 0, rows.start, finite_check, record.shape)
        yield rows.start, out
        if release is not None:
            release()


def _chunk_slices(record: GGUFTensor) -> list[slice]:
    """The row ranges dequantized at once: whole rows of a 2-D (or higher) tensor, about
    DEQUANT_CHUNK_BYTES of float32 each (rows are whole blocks); a 1-D tensor in one."""
    if len(record.shape) == 0 or 0 in record.shape:
        return []
    if len(record.shape) == 1:
        return [slice(0, record.shape[0])]
    row_bytes = 4 * int(np.prod(record.shape[1:], dtype=np.int64))
    step = max(1, DEQUANT_CHUNK_BYTES // row_bytes)
    return [slice(start, start + step) for start in range(0, record.shape[0], step)]


def _rows(record: GGUFTensor, rows: slice, dtype) -> np.ndarray:
    """The rows dequantized into float32, corrected (norm weights are stored as 1 + w) and
    cast to dtype."""
    values = np.asarray(_dequantize_rows(record.data[rows], record.qtype, _gguf()), np.float32)
    # In float32 before the cast, as transformers does (`weights - 1`, then `.to(dtype)`).
    if names.stored_as_one_plus(record.name):
        values = values - np.float32(1)
    return np.asarray(values, dtype)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _q8_0_rows(rows: np.ndarray) -> np.ndarray:
    """Q8_0 (blocks of a float16 scale and 32 int8 values) in one pass: int8 x float32 is the
    package's float32(q) x scale, the same products bit for bit, without its float32 copy of q
    (156 -> ~400 M values/s here; Q8_0 holds 63% of the real 270m's values)."""
    blocks = rows.reshape(-1, 34)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    return (blocks[:, 2:].view(np.int8) * scale).reshape(rows.shape[0], -1)


def _q5_0_rows(rows: np.ndarray) -> np.ndarray:
    """Q5_0 (a float16 scale, 32 high bits, then 16 bytes of low nibbles: values 0-15 from the
    low nibbles, 16-31 from the high ones) as int8 (q - 16) x float32 scale: the package's
    products bit for bit, 5x its speed (it shifts a uint32 per value; Q5_0 holds 25% of the
    real 270m's values)."""
    blocks = rows.reshape(-1, 22)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    q = np.unpackbits(blocks[:, 2:6], axis=1, bitorder="little")  # bit j of the uint32
    # q - 16 for a 4-bit q is q itself when the high bit is set, else its int8 bits are 0xF0 | q.
    q ^= np.uint8(1)
    q *= np.uint8(0xF0)
    low = blocks[:, 6:]
    q[:, :16] |= low & np.uint8(0x0F)
    q[:, 16:] |= low >> np.uint8(4)
    return (q.view(np.int8) * scale).reshape(rows.shape[0], -1)


_OWN_KERNELS = {"Q8_0": _q8_0_rows, "Q5_0": _q5_0_rows}  # faster than the package's, same bits


def _dequantize_rows(rows, qtype, gguf) -> np.ndarray:
    """float32 values of whole rows: our own kernel for the types that dominate real files, the
    package's own per-type kernel over the chunk at once for the rest (its `dequantize` runs
    that kernel 16 rows at a time in a Python loop, 2.5 s of the real 270m's 262,144-row Q8_0
    embedding); float types through `dequantize`, which views them."""
    own = _OWN_KERNELS.get(qtype.name)
    if own is not None and rows.ndim == 2:
        return own(rows)
    kind = getattr(gguf.quants, qtype.name, None)
    if kind is None or not hasattr(kind, "dequantize_rows"):
        return gguf.quants.dequantize(rows, qtype)
    kind.init_grid()  # the lattice of the IQ types, built once
    return kind.dequantize_rows(rows)


def releaser(file: GGUFFile, record: GGUFTensor):
    """Drops the tensor's mapped file pages from the process (they are read again if needed)."""
    mm = getattr(file.data, "_mmap", None)
    if mm is None:
        return None
    start = record.offset
    first = start // mmap.PAGESIZE * mmap.PAGESIZE
    return lambda: mm.madvise(mmap.MADV_DONTNEED, first, start + record.nbytes - first)


def same_values(a: GGUFTensor, b: GGUFTensor) -> bool:
    return np.array_equal(dequantize(a, np.float32), dequantize(b, np.float32))


def plan(path: str | Path, params: dict) -> dict:
    """GGUF tensors matched to parameters (gemma3.ckpt.weights.match_tensors: one error listing
    every unexpected, missing, misshapen or undecodable tensor)."""
    records = tensors(path)
    known = supported_types()
    bad = [f"{r.name} in {r.file.name} has type {r.ggml_type}, which the gguf package cannot "
           "dequantize" for r in records if r.ggml_type not in known]
    try:
        matched = match_tensors(records, params, f"GGUF file {path} does not match the Gemma 3 "
                                "model its metadata describes",
                                canonical=names.canonical_name, same_values=same_values)
    except LoadError as e:
        if not bad:
            raise
        raise LoadError(f"{e}\n  " + "\n  ".join(bad)) from None
    if bad:
        raise LoadError(f"GGUF file {path} has tensors of unsupported types "
                        f"({len(bad)} problem(s)):\n  " + "\n  ".join(bad))
    return matched
