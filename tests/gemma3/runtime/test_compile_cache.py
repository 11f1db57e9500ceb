"""The persistent compilation cache: a second process loads the programs the first compiled
(asserted through JAX's cache-hit log and the cache folder, never by timing)."""

import subprocess
import sys
from pathlib import Path

from gemma3.runtime import compile_cache

# Compiles one small program (far under JAX's default 1 s threshold, so only our settings get
# it cached) and says whether JAX logged a persistent-cache hit for it.
CHILD = """
import logging, sys
import jax, jax.numpy as jnp
from gemma3.runtime import compile_cache
hits = []
class Hits(logging.Handler):
    def emit(self, record):
        if "Persistent compilation cache hit" in record.getMessage():
            hits.append(record)
logger = logging.getLogger("jax._src.compiler")
logger.setLevel(logging.DEBUG)
logger.addHandler(Hits())
print("dir", compile_cache.enable())
jax.jit(lambda x: jnp.tanh(x) @ x.T).lower(jnp.ones((8, 8))).compile()
print("hits", len(hits))
"""


def run_child(cache: Path) -> dict[str, str]:
    env = {"GEMMA3_COMPILE_CACHE": str(cache), "PYTHONPATH": str(Path(__file__).parents[1]),
           "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, check=True, timeout=120)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def test_a_second_process_hits_the_cache(tmp_path):
    cache = tmp_path / "jax-compile"
    first = run_child(cache)
    assert first == {"dir": str(cache), "hits": "0"}
    entries = sorted(p.name for p in cache.iterdir())
    assert entries, "the first process wrote nothing into the cache folder"
    # Every program the first process compiled (ours and jnp.ones's) now comes from disk.
    assert int(run_child(cache)["hits"]) == len(entries) >= 1
    assert sorted(p.name for p in cache.iterdir()) == entries  # nothing compiled anew


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "c"))
    assert compile_cache.cache_dir() == tmp_path / "c"
    monkeypatch.setenv(compile_cache.ENV, "off")
    assert compile_cache.cache_dir() is None and compile_cache.enable() is None
    monkeypatch.delenv(compile_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.cache_dir() == tmp_path / "xdg" / "gemma3" / "jax-compile"


# The prefill program of the 270m (abstract weights: nothing allocated), as lowered text.
PREFILL = """
import hashlib
import jax, jax.numpy as jnp
from flax import nnx
from gemma3.generation import loop as generation
from gemma3.config import Gemma3Config
from gemma3.nn.model import Gemma3
from tests.support import REPO_ROOT
model = nnx.eval_shape(lambda: Gemma3(Gemma3Config.gemma3_270m(), dtype=jnp.bfloat16,
                                      rngs=nnx.Rngs(0)))
graphdef, state = nnx.split(model)
ids = jax.ShapeDtypeStruct((1, 32), jnp.int32)
text = generation._prefill.lower(graphdef, state, ids, ids, None, None,
                                 cache_length=128).as_text(debug_info=False)
print(hashlib.sha256(text.encode()).hexdigest())
"""


def test_programs_are_the_same_in_every_process():
    """The cache key is the program: it must not follow Python's per-process hash seed (layer
    types iterated as a set made two processes share nothing)."""
    digests = set()
    for seed in ("1", "2"):  # these two ordered the layer types differently
        env = {"PYTHONPATH": str(Path(__file__).parents[1]), "JAX_PLATFORMS": "cpu",
               "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", PREFILL], env=env, capture_output=True,
                              text=True, check=True, timeout=300)
        digests.add(done.stdout.split()[-1])
    assert len(digests) == 1
