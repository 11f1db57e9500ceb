"""Copies out of memory-mapped checkpoint files into host arrays of the load dtype: in chunks
(dropping each chunk's file pages after it), into host buffers XLA:CPU adopts without another
copy, and checked for NaN/Inf on the way. Both readers (safetensors, GGUF) and the placer use
these; none of them knows the others."""

from __future__ import annotations

import mmap

import ml_dtypes
import numpy as np

from gemma3.ckpt.errors import NonFiniteError

COPY_CHUNK_BYTES = 32 * 2**20  # file bytes resident at once while a tensor is copied out
CHECK_BLOCK = 2**18  # elements checked for NaN/Inf at once: cache-sized, so the check stays cheap
# Float dtype -> (same-size unsigned int, mask without the sign bit, exponent all ones): a value
# is NaN or Inf exactly when its bits without the sign are >= the all-ones exponent.
FLOAT_BITS = {
    np.dtype(ml_dtypes.bfloat16): (np.uint16, 0x7FFF, 0x7F80),
    np.dtype(np.float16): (np.uint16, 0x7FFF, 0x7C00),
    np.dtype(np.float32): (np.uint32, 0x7FFF_FFFF, 0x7F80_0000),
}


# Private, not mmap's default (shared): shared anonymous memory is shmem, whose pages cost 1.5x
# as much to fault in (0.60-0.63 against 0.39-0.43 s per GiB here) and 3x as much to free.
_PRIVATE = {"flags": mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS} if hasattr(mmap, "MAP_PRIVATE") else {}


def host_buffer(shape, dtype) -> np.ndarray:
    """A new, writable array in its own private anonymous map: page-aligned, so XLA:CPU adopts
    it as the device buffer without a copy (jax.device_put(may_alias=True)), and in 4 KiB pages.
    numpy's own large arrays ask for transparent huge pages, which cost 2-5x more where the
    kernel must compact memory to find them on the fault ('defrag: madvise', as on the VMs
    here): first writing 1 GiB took 1.2-2.4 s against 0.39-0.48 s in 4 KiB pages, loading the
    synthetic 1b in float32 5.5-6.9 s against 2.5 s. Where whole free blocks are at hand huge
    pages are faster (the 1b in bfloat16: 0.98-1.00 s, but 4.95 s once, against 1.55-1.81 s):
    4 KiB pages are the steady choice. Decoding from either ran as fast (the real 270m)."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    if count == 0:
        return np.empty(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, count * dtype.itemsize, **_PRIVATE), dtype).reshape(shape)


def copy_out(view: np.ndarray, dtype, release=None, finite_check: str | None = None
             ) -> np.ndarray:
    """view (of the mapped file, maybe transposed) as a new C-ordered array of `dtype`, copied
    in chunks along its file-major axis (the largest stride), calling `release` after each
    chunk so at most a chunk of the file is resident besides the copy.

    finite_check: the tensor's description ("model.norm.weight in model.safetensors"); when
    given, each chunk is checked for NaN and Inf as it is copied, and NonFiniteError names it."""
    if release is None or view.ndim == 0 or view.size == 0:
        out = np.array(view, dtype=dtype, order="C")
        check_finite(out, None, 0, finite_check, out.shape)
        return out
    out = host_buffer(view.shape, dtype)
    axis = int(np.argmax(np.abs(view.strides)))
    step = max(1, COPY_CHUNK_BYTES // max(abs(view.strides[axis]), 1))
    for start in range(0, view.shape[axis], step):
        chunk = (slice(None),) * axis + (slice(start, start + step),)
        out[chunk] = view[chunk]
        release()
        check_finite(out[chunk], axis, start, finite_check, out.shape)
    return out


def check_finite(chunk: np.ndarray, axis, start: int, name: str | None, shape) -> None:
    """Raises NonFiniteError naming `name` when `chunk` (rows `start`... of `shape` along
    `axis`) holds NaN or Inf; name None: not checked."""
    if name is None:
        return
    bad = first_nonfinite(chunk)
    if bad is not None:
        where = np.unravel_index(bad, chunk.shape)
        value, index = chunk[where], [int(i) for i in where]
        if axis is not None:
            index[axis] += start
        raise NonFiniteError(
            f"{name} holds non-finite values (first: {float(value)} at index "
            f"{index} of the loaded {list(shape)} array): the checkpoint is "
            "corrupt, and the model would silently produce garbage. Pass "
            "allow_nonfinite=True to from_pretrained to load it anyway.")


def first_nonfinite(a: np.ndarray) -> int | None:
    """The flat (C-order) index of the first NaN or Inf in `a`, or None. Float types are read
    by their exponent bits in cache-sized blocks: several times faster than np.isfinite."""
    bits = FLOAT_BITS.get(a.dtype)
    if bits is None or not a.flags.c_contiguous:
        bad = np.flatnonzero(~np.isfinite(a))
        return int(bad[0]) if bad.size else None
    uint, mask, exponent = bits
    flat = a.reshape(-1).view(uint)
    for start in range(0, flat.size, CHECK_BLOCK):
        magnitude = flat[start:start + CHECK_BLOCK] & mask
        if magnitude.max() >= exponent:
            return start + int(np.flatnonzero(magnitude >= exponent)[0])
    return None
