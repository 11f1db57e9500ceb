"""Is the GGUF file whole? Walks its header, metadata and tensor table (without building any
value) and checks that every tensor's data lies inside the file, before anything is parsed into
arrays or dequantized. A file cut short (an interrupted download or copy) is refused naming the
file, where it ends, and the first tensor whose data runs past that end with the expected and
actual sizes, instead of a numpy reshape error deep inside a reader.

Layout (GGUF v2 and v3, either byte order): magic `GGUF`, version u32, tensor count u64,
metadata count u64; each metadata entry a key string, a value type u32 and the value (strings
are a u64 length and bytes; arrays an element type u32, a count u64 and the elements); each
tensor a name string, n_dims u32, the dims u64 each, its GGML type u32 and its data offset u64
from the data section, which starts at the next multiple of `general.alignment` (default 32).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from gemma3.ckpt.errors import CheckpointError

HEADER = "the GGUF header"
# Bytes of each fixed-size metadata value type (GGUFValueType); 8 is a string, 9 an array.
SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY, UINT32 = 8, 9, 4
DEFAULT_ALIGNMENT = 32


class TruncatedGGUF(CheckpointError):
    """A GGUF file that ends before its own header, tables or tensor data say it does."""


class _Cut(Exception):
    """The walk reached the end of the file while reading `where`."""

    def __init__(self, where: str):
        self.where = where


class _Cursor:
    def __init__(self, buffer, order: str):
        self.buffer, self.order, self.at = buffer, order, 0
        self.where = HEADER

    def take(self, n: int) -> int:
        """The offset of the next n bytes, which must lie inside the file."""
        start = self.at
        if start + n > len(self.buffer):
            raise _Cut(self.where)
        self.at = start + n
        return start

    def unpack(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        return struct.unpack_from(self.order + fmt, self.buffer, self.take(size))[0]

    def string(self) -> bytes:
        n = self.unpack("Q")
        start = self.take(n)
        return bytes(self.buffer[start:start + n])

    def skip_value(self, kind: int) -> None:
        if kind in SCALAR_BYTES:
            self.take(SCALAR_BYTES[kind])
        elif kind == STRING:
            self.take(self.unpack("Q"))
        elif kind == ARRAY:
            element, count = self.unpack("I"), self.unpack("Q")
            if element in SCALAR_BYTES:
                self.take(SCALAR_BYTES[element] * count)
            else:
                for _ in range(count):
                    self.skip_value(element)
        else:
            raise ValueError(f"metadata value type {kind}")


def check_extent(path: str | Path, block_sizes: dict[int, tuple[int, int]]) -> None:
    """Raises TruncatedGGUF unless the whole file is there. block_sizes: GGML type id ->
    (elements per block, bytes per block), the gguf package's GGML_QUANT_SIZES. A file that
    is no GGUF at all (another magic or version) is left to the reader to refuse."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise TruncatedGGUF(f"{path} is empty (0 bytes); expected a GGUF file")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
        try:
            tensors, data_start = _walk(buffer)
        except _Cut as cut:
            raise TruncatedGGUF(f"{path} is truncated: it ends at byte {size}, inside "
                                f"{cut.where}; the file was cut short (an interrupted "
                                "download or copy?)") from None
        except _NotGGUF:
            return
    _check_tensor_data(path, size, tensors, data_start, block_sizes)


class _NotGGUF(Exception):
    pass


def _walk(buffer) -> tuple[list[tuple[str, tuple[int, ...], int, int]], int]:
    """[(name, dims, GGML type, offset)] and the data section's start."""
    if len(buffer) >= 4 and bytes(buffer[:4]) != b"GGUF":
        raise _NotGGUF
    cursor = _Cursor(buffer, "<")
    cursor.take(4)
    version = cursor.unpack("I")
    if version not in (2, 3):
        if struct.unpack(">I", struct.pack("<I", version))[0] not in (2, 3):
            raise _NotGGUF  # GGUF v1 or a future version: the reader says what it makes of it
        cursor.order = ">"
    n_tensors, n_metadata = cursor.unpack("Q"), cursor.unpack("Q")
    alignment = DEFAULT_ALIGNMENT
    for index in range(n_metadata):
        cursor.where = f"the metadata (entry {index + 1} of {n_metadata})"
        key = cursor.string().decode("utf-8", "replace")
        cursor.where = f"the metadata (entry {index + 1} of {n_metadata}, {key!r})"
        kind = cursor.unpack("I")
        if key == "general.alignment" and kind == UINT32:
            alignment = cursor.unpack("I") or DEFAULT_ALIGNMENT
        else:
            try:
                cursor.skip_value(kind)
            except ValueError:
                raise _NotGGUF from None
    tensors = []
    for index in range(n_tensors):
        cursor.where = f"the tensor table (tensor {index + 1} of {n_tensors})"
        name = cursor.string().decode("utf-8", "replace")
        cursor.where = f"the tensor table (tensor {index + 1} of {n_tensors}, {name!r})"
        dims = tuple(cursor.unpack("Q") for _ in range(cursor.unpack("I")))
        tensors.append((name, dims, cursor.unpack("I"), cursor.unpack("Q")))
    return tensors, -(-cursor.at // alignment) * alignment


def _check_tensor_data(path: Path, size: int, tensors: list, data_start: int,
                       block_sizes: dict[int, tuple[int, int]]) -> None:
    ends = []
    for name, dims, kind, offset in tensors:
        if kind not in block_sizes:
            continue  # a type the package does not know: the loader names it
        per_block, block_bytes = block_sizes[kind]
        elements = 1
        for d in dims:
            elements *= d
        start = data_start + offset
        ends.append((start, start + elements // per_block * block_bytes, name, dims))
    past = sorted(e for e in ends if e[1] > size)
    if not past:
        return
    start, end, name, dims = past[0]
    needed = max(e[1] for e in ends)
    shape = list(reversed(dims))  # GGUF lists dims fastest first; torch's order for people
    raise TruncatedGGUF(
        f"{path} is truncated: tensor {name!r} (shape {shape}) needs bytes {start}..{end}, but "
        f"the file ends at byte {size}; expected a file of at least {needed} bytes, got {size} "
        f"({needed - size} missing, {len(past)} tensor(s) affected). The file was cut short "
        "(an interrupted download or copy?)")
