"""Where compiled programs are kept: the folder from the environment, and a store key that is
the same in every process (the program store itself: test_program_store.py)."""

import subprocess
import sys

from gemma3.runtime import compile_cache
from tests.support import REPO_ROOT


def test_cache_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(compile_cache, "_enabled", None)  # restored after: the rest stays off
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "c"))
    assert compile_cache.cache_dir() == tmp_path / "c"
    assert compile_cache.enable() == tmp_path / "c" == compile_cache.programs_dir()
    assert (tmp_path / "c").is_dir()
    monkeypatch.setenv(compile_cache.ENV, "off")
    assert compile_cache.cache_dir() is None and compile_cache.enable() is None
    assert compile_cache.programs_dir() is None
    monkeypatch.delenv(compile_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.cache_dir() == tmp_path / "xdg" / "gemma3" / "programs"


def test_jax_persistent_cache_stays_off(monkeypatch, tmp_path):
    import jax

    monkeypatch.setattr(compile_cache, "_enabled", None)
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "c"))
    compile_cache.enable()
    assert not jax.config.values["jax_compilation_cache_dir"]


# The store key of the 270m's prefill program (abstract weights: nothing allocated).
PREFILL_KEY = """
import jax, jax.numpy as jnp
from flax import nnx
from gemma3.generation import loop
from gemma3.config import Gemma3Config
from gemma3.nn.model import Gemma3
from gemma3.runtime import program_store
model = nnx.eval_shape(lambda: Gemma3(Gemma3Config.gemma3_270m(), dtype=jnp.bfloat16,
                                      rngs=nnx.Rngs(0)))
graphdef, state = nnx.split(model)
ids = jax.ShapeDtypeStruct((1, 32), jnp.int32)
print(program_store.key(loop._prefill, graphdef, (state, ids, ids, None, None),
                        {"cache_length": 128}, {}))
"""


def test_store_keys_are_the_same_in_every_process():
    """The key must not follow Python's per-process hash seed (layer types iterated as a set
    once made two processes share nothing)."""
    keys = set()
    for seed in ("1", "2"):  # these two ordered the layer types differently
        env = {"PYTHONPATH": str(REPO_ROOT), "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin",
               "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", PREFILL_KEY], env=env, capture_output=True,
                              text=True, check=True, timeout=300, cwd=REPO_ROOT)
        keys.add(done.stdout.split()[-1])
    assert len(keys) == 1
