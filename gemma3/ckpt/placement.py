"""The placer: host tensors onto the device(s) in the load dtype, so that host memory holds about
one tensor (or one chunk of the file) at a time besides the model.

- a view of a memory-mapped file: copied out chunk by chunk into an aligned host array that
  XLA:CPU adopts without another copy (`device_put(may_alias=True)`), or, with a sharding, one
  device slice at a time (put_sharded);
- a host array the reader made (a dequantized GGUF tensor): adopted as it is on CPU, moved, or
  sliced;
- rows streamed by the reader (a large GGUF tensor stored as it is used, off CPU): written into
  the device buffer chunk by chunk, so the tensor never exists twice in host memory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from gemma3.ckpt.host_copy import copy_out

STREAMED_TENSOR_BYTES = 64 * 2**20  # larger unsharded tensors go to the device row chunk by chunk


class Placer:
    """dtype: the load dtype; shardings: {parameter path: NamedSharding} (empty: one device)."""

    def __init__(self, dtype, shardings: dict):
        self.dtype = np.dtype(dtype)
        self.shardings = shardings

    def from_view(self, key, view: np.ndarray, release: Callable[[], None] | None = None,
                  finite_check: str | None = None) -> jax.Array:
        """`view` (of the mapped file, in the parameter's shape) on its device(s); `release`
        drops the file pages after each chunk; finite_check names the tensor in the NaN/Inf
        error (None: not checked)."""
        sharding = self.shardings.get(key)
        if sharding is None:
            # device_put(may_alias=True) adopts the fresh, page-aligned host copy without
            # another copy on CPU (jnp.asarray copied every tensor), so the load holds the
            # converted model plus one chunk of the file, not two copies of a tensor.
            return jax.device_put(copy_out(view, self.dtype, release, finite_check),
                                  may_alias=True)
        return put_sharded(view, self.dtype, sharding, release, finite_check)

    def from_host(self, key, host: np.ndarray) -> jax.Array:
        """A host array of the load dtype, handed over by the caller (who never writes to it
        again), on its device(s)."""
        sharding = self.shardings.get(key)
        if sharding is None:
            # An aligned array becomes the CPU device buffer itself; elsewhere it is copied.
            return jax.device_put(host, may_alias=True)
        return put_sharded(host, self.dtype, sharding)

    def streams(self, key, shape) -> bool:
        """Whether the parameter is large and unsharded on an accelerator: then from_rows
        places it. On CPU the host array is the device buffer, so nothing is streamed."""
        return (key not in self.shardings and not host_is_device_memory()
                and int(np.prod(shape)) * self.dtype.itemsize > STREAMED_TENSOR_BYTES)

    def from_rows(self, shape, rows: Iterable[tuple[int, np.ndarray]]) -> jax.Array:
        """A device array of `shape` written from (first row, rows) chunks."""
        buffer = jnp.zeros(shape, self.dtype)
        for start, chunk in rows:
            buffer = _write_rows(buffer, jax.device_put(chunk), start)
        return buffer


def host_is_device_memory() -> bool:
    """Whether device arrays live in host memory (XLA:CPU), so a host array can be adopted."""
    return jax.default_backend() == "cpu"


@functools.partial(jax.jit, donate_argnums=0)
def _write_rows(buffer, rows, start):
    # Donated, so XLA updates the buffer in place.
    return jax.lax.dynamic_update_slice_in_dim(buffer, rows, start, axis=0)


def put_sharded(source: np.ndarray, dtype, sharding: jax.sharding.Sharding,
                release: Callable[[], None] | None = None,
                finite_check: str | None = None) -> jax.Array:
    """A global array of source's shape, built one device at a time: each addressable device's
    slice is cast, copied and transferred alone. `source` is usually a view of the memory-mapped
    file, so a host reads only the slices its devices hold and holds one slice at a time in
    host memory; in a multi-host job the other hosts' slices are never read. `release` drops
    the mapped pages; it runs after each chunk so the file is never resident beyond one chunk.
    finite_check: see gemma3.ckpt.host_copy.copy_out (each slice checked as it is copied)."""
    dtype = np.dtype(dtype)
    shards = []
    for device, index in sharding.addressable_devices_indices_map(source.shape).items():
        host = copy_out(source[index], dtype, release, finite_check)
        # Waiting bounds host memory to one slice (jax.make_array_from_callback would hold the
        # slices of every local device at once).
        shards.append(jax.device_put(host, device).block_until_ready())
        del host
    return jax.make_array_from_single_device_arrays(source.shape, sharding, shards)
