"""Where a loaded tensor's bytes go on CPU: the reader's aligned host array becomes the device
buffer itself, so nothing is copied or streamed."""

from __future__ import annotations

import mmap

import numpy as np

from gemma3.ckpt import placement
from gemma3.ckpt.host_copy import host_buffer


def test_cpu_adopts_the_host_array_and_streams_nothing():
    placer = placement.Placer(np.float32, {})
    assert placement.host_is_device_memory()  # the default test run is on CPU
    assert not placer.streams("embedding", (262_144, 640))  # the 270m's embedding: 671 MB
    host = host_buffer((512, 64), np.float32)
    host[...] = np.arange(64, dtype=np.float32)
    value = placer.from_host("weight", host)
    assert value.unsafe_buffer_pointer() == host.ctypes.data
    np.testing.assert_array_equal(np.asarray(value), host)


def test_host_buffers_are_page_aligned_writable_and_empty_shapes_work():
    for shape, dtype in [((3, 5), np.float32), ((7,), np.uint16), ((0, 640), np.float32)]:
        host = host_buffer(shape, dtype)
        assert host.shape == shape and host.dtype == dtype and host.flags.writeable
        if host.size:
            assert host.ctypes.data % mmap.PAGESIZE == 0
