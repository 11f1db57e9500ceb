"""The program store: a second process runs our programs from it without tracing them, gives
the same tokens, never stores what JAX's own cache gave back, and replaces what it cannot use
(asserted by what the child saw and the folder, never by timing)."""

import json
import pickle
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gemma3.generation import loop
from gemma3.runtime import compile_cache, program_store
from tests.support import REPO_ROOT

# A tiny random model generates 6 tokens with both caches on; the child reports the tokens,
# how many of our programs it traced (lowered) and how many JAX's cache gave back.
CHILD = """
import json, logging
import jax.numpy as jnp, numpy as np
from flax import nnx
from gemma3.generation import loop
from gemma3.nn.model import Gemma3
from gemma3.runtime import compile_cache, program_store
from tests.support.gguf_fixtures import tiny_config
import os, jax
compile_cache.enable()
if os.environ.get("JAX_CACHE"):  # JAX's own persistent cache too, which gemma3 leaves off
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
hits = []
class Hits(logging.Handler):
    def emit(self, record):
        if "Persistent compilation cache hit" in record.getMessage():
            hits.append(record.getMessage())
logger = logging.getLogger("jax._src.compiler")
logger.setLevel(logging.DEBUG)
logger.addHandler(Hits())
traced = []
compile = program_store._compile
def counting(fn, *args):
    traced.append(fn.__name__)
    return compile(fn, *args)
program_store._compile = counting
model = Gemma3(tiny_config(), dtype=jnp.float32, rngs=nnx.Rngs(0))
out = loop.generate(model, np.array([[2, 40, 41, 42]], np.int32), max_new_tokens=6)
print(json.dumps({"tokens": out.tolist(), "traced": sorted(traced),
                  "jax_hits": sum("jit__prefill" in h or "jit__decode" in h
                                  or "jit__first_token" in h for h in hits)}))
"""
PROGRAMS = ["_decode_loop", "_first_token", "_prefill"]


def run_child(cache, jax_cache=None) -> dict:
    env = {"GEMMA3_COMPILE_CACHE": str(cache), "PYTHONPATH": str(REPO_ROOT),
           "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    if jax_cache is not None:
        env["JAX_CACHE"] = str(jax_cache)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, check=True, timeout=300, cwd=REPO_ROOT)
    return json.loads(done.stdout.splitlines()[-1])


def stored(cache) -> list[str]:
    return sorted(p.name for p in cache.glob("*.bin"))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A cache folder after one process, and what that process saw."""
    base = tmp_path_factory.mktemp("store")
    return base, run_child(base / "cache")


@pytest.fixture
def cache(first_run, tmp_path):
    """A copy of the first process's folder."""
    copy = tmp_path / "cache"
    shutil.copytree(first_run[0] / "cache", copy)
    return copy


def test_a_second_process_runs_the_stored_programs_untraced(first_run, cache):
    first = first_run[1]
    assert first["traced"] == PROGRAMS and first["jax_hits"] == 0
    entries = stored(cache)
    assert len(entries) == 3
    assert run_child(cache) == {"tokens": first["tokens"], "traced": [], "jax_hits": 0}
    assert stored(cache) == entries


def test_what_jax_cache_gave_back_is_not_stored(tmp_path):
    """Deserialized by JAX's persistent cache, an XLA:CPU program serializes without its
    kernels, so with that cache on the store waits for a real compile."""
    cache, jax_cache = tmp_path / "store", tmp_path / "jax"
    first = run_child(cache, jax_cache)
    assert first["jax_hits"] == 0 and len(stored(cache)) == 3
    for entry in cache.iterdir():
        entry.unlink()
    second = run_child(cache, jax_cache)
    assert second["traced"] == PROGRAMS and second["jax_hits"] == 3
    assert second["tokens"] == first["tokens"] and stored(cache) == []


def test_an_unusable_entry_is_replaced(first_run, cache):
    """One entry cut short, one of another format, one whose argument tree is not the call's."""
    first = first_run[1]
    entries = sorted(cache.glob("*.bin"))
    cut, alien, other_tree = (entry.read_bytes() for entry in entries)
    entries[0].write_bytes(cut[:len(cut) // 2])
    entries[1].write_bytes(b"not a program" + alien)
    serialized, _, out_tree = pickle.loads(other_tree[len(program_store.FORMAT):])
    entries[2].write_bytes(program_store.FORMAT + pickle.dumps(
        (serialized, jax.tree.structure(((1, 2), {})), out_tree)))
    assert run_child(cache) == first  # each compiled again
    assert stored(cache) == [e.name for e in entries]
    assert run_child(cache) == {**first, "traced": []}  # and stored whole again


def test_the_key_follows_what_the_program_depends_on(monkeypatch, tmp_path):
    graphdef = "graph"
    args = (np.zeros((1, 4), np.int32),)
    base = program_store.key(loop._prefill, graphdef, args, {"cache_length": 8}, {})
    assert base == program_store.key(loop._prefill, graphdef, args, {"cache_length": 8}, {})
    changed = [
        program_store.key(loop._first_token, graphdef, args, {"cache_length": 8}, {}),
        program_store.key(loop._prefill, "other graph", args, {"cache_length": 8}, {}),
        program_store.key(loop._prefill, graphdef, (np.zeros((1, 8), np.int32),),
                          {"cache_length": 8}, {}),
        program_store.key(loop._prefill, graphdef, (jnp.zeros((1, 4), jnp.float32),),
                          {"cache_length": 8}, {}),
        program_store.key(loop._prefill, graphdef, args, {"cache_length": 16}, {}),
        program_store.key(loop._prefill, graphdef, args, {"cache_length": 8},
                          {"xla_cpu_use_onednn": True}),
    ]
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")
    changed.append(program_store.key(loop._prefill, graphdef, args, {"cache_length": 8}, {}))
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setattr(program_store, "_source_digest", lambda: "edited source")
    changed.append(program_store.key(loop._prefill, graphdef, args, {"cache_length": 8}, {}))
    assert len({base, *changed}) == len(changed) + 1


def test_off_without_the_compile_cache(monkeypatch):
    monkeypatch.setattr(compile_cache, "_enabled", None)
    assert compile_cache.programs_dir() is None
