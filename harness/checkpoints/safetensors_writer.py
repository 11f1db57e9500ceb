"""Writes a safetensors file tensor by tensor: the header first (we know every shape up front),
then each tensor's bytes streamed in chunks, so no tensor, let alone the model, is ever whole
in memory.

Format: 8-byte little-endian header length, a JSON header (padded with spaces to a multiple of
8 bytes, as the safetensors library does), then the raw little-endian data in header order.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from harness.checkpoints.layout import BF16_BYTES, TensorSpec

# Yields the tensor's values in order, as bf16 arrays that together hold prod(shape) values.
Chunks = Callable[[TensorSpec], Iterable[np.ndarray]]


def header_bytes(tensors: list[TensorSpec]) -> bytes:
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape),
                          "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def write_file(path: Path, tensors: list[TensorSpec], chunks: Chunks) -> int:
    """Writes `tensors` (sorted by name, as safetensors orders them) to path; returns bytes."""
    tensors = sorted(tensors, key=lambda t: t.name)
    head = header_bytes(tensors)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for t in tensors:
            written = 0
            for chunk in chunks(t):
                if chunk.dtype.itemsize != BF16_BYTES:
                    raise TypeError(f"{t.name}: chunk dtype {chunk.dtype}; expected bfloat16")
                f.write(np.ascontiguousarray(chunk).tobytes())
                written += chunk.size
            if written != math.prod(t.shape):
                raise ValueError(f"{t.name}: wrote {written} values; shape {list(t.shape)} "
                                 f"needs {math.prod(t.shape)}")
    return path.stat().st_size


def chunk_sizes(total: int, chunk: int) -> Iterator[int]:
    for start in range(0, total, chunk):
        yield min(chunk, total - start)
