"""The backend fingerprint: versions the result schema accepts, host facts, and a loud failure
when the run was asked for a backend JAX does not see."""

import re
import subprocess
import sys

import pytest

from harness.system import fingerprint

VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")


def test_versions_cover_the_stack_and_match_the_schema():
    pytest.importorskip("torch", reason="the stack's versions include torch's")
    versions = fingerprint.versions()
    for name in ("python", "jax", "jaxlib", "flax", "numpy", "torch", "transformers"):
        assert versions[name] and VERSION.match(versions[name]), name
    assert set(versions) >= {"cuda", "cudnn", "libtpu"}
    assert re.match(r"^[0-9]+\.[0-9]+", versions["jax"])


def test_clean_version_makes_odd_strings_acceptable():
    assert fingerprint.clean_version("12.4 (build 7)") == "12.4__build_7_"
    assert fingerprint.clean_version("") is None


def test_host_and_devices_on_this_machine():
    host = fingerprint.host()
    assert set(host) == {"cpu", "cpu_flags", "cores", "ram_bytes", "os"} and host["ram_bytes"] > 0
    assert host["cpu_flags"] == sorted(host["cpu_flags"])
    assert set(host["cpu_flags"]) <= fingerprint.VECTOR_FLAGS
    found = fingerprint.devices()
    assert found["backend"] == "cpu" and found["device_kind"] == "cpu"
    assert 0 < found["available_bytes"] <= found["memory_per_device_bytes"]


def test_cpu_flags_keep_only_vector_and_matrix_flags_sorted():
    cpuinfo = ("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma amx_tile avx512f amx_bf16 "
               "avx512_bf16 ht\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert fingerprint.cpu_flags(cpuinfo) == ["amx_bf16", "amx_tile", "avx2", "avx512_bf16",
                                              "avx512f", "fma"]
    assert fingerprint.cpu_flags("model name\t: Apple M2\n") == []


def test_asking_for_a_gpu_on_a_cpu_fails_loudly():
    with pytest.raises(fingerprint.BackendMismatch, match="--backend gpu was asked for"):
        fingerprint.check_backend("gpu", "cpu")
    fingerprint.check_backend(None, "cpu")
    fingerprint.check_backend("cpu", "cpu")


def test_the_command_line_exits_non_zero_on_a_mismatch():
    done = subprocess.run([sys.executable, "-m", "harness.system.fingerprint", "--backend", "tpu"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 3 and "tpu" in done.stderr and done.stdout == ""
