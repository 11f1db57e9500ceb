"""Our compiled programs, compiled once per process and kept whole on disk, where the next
process finds them without tracing the model.

JAX's own persistent cache is keyed by the traced program, so a process that hits it still
traces and lowers the model first: 0.6-1.0 s of the 270m's prompt pass on a 2-core EPYC,
before the 0.3 s that loading the executable takes. Here the key is everything the trace
follows from, hashed without tracing:
- the program (its name) and the source of the gemma3 package, byte for byte;
- the model's graph definition (its structure and config), the arguments' tree, shapes,
  dtypes and shardings, the static arguments and the compiler options;
- jax and jaxlib's versions, every jax config value but the caches' own settings, XLA_FLAGS,
  the devices and the CPU (a CPU executable is built for the CPU's instruction set).
A stored program whose argument tree is not the call's, or that does not load, is removed and
compiled again; writing one is never an error: the store only saves time. Only a program XLA
has just compiled is stored: one that JAX's persistent cache gave back serializes without its
kernels on XLA:CPU (jaxlib 0.10.2: running it fails with "Function ..._fusion not found"), which
is why gemma3.runtime.compile_cache leaves that cache off. The store is on once
compile_cache.enable() has named its folder.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import tempfile
import threading
from pathlib import Path

import jax
import jaxlib
import numpy as np
from jax.experimental.serialize_executable import deserialize_and_load, serialize

from gemma3.runtime import compile_cache, cpu_tuning

FORMAT = b"gemma3 program store 1\n"
JAX_CACHE_HIT = "/jax/compilation_cache/cache_hits"
_hits = threading.local()  # JAX cache hits in this thread (compiling happens in the caller's)


def _count_hit(event: str, **_) -> None:
    if event == JAX_CACHE_HIT:
        _hits.count = getattr(_hits, "count", 0) + 1


jax.monitoring.register_event_listener(_count_hit)


_LOADED: dict = {}  # this process's programs, by function, graph and argument shapes


def program(fn, graphdef, args: tuple, static: dict | None = None, options: dict | None = None):
    """The compiled program of fn (a jitted function, graphdef its static first argument) for
    args and the static keyword arguments, with XLA compiler options: once per process, from
    the store when it holds it. Call it with *args."""
    static, options = static or {}, options or {}
    leaves, treedef = jax.tree.flatten(args)
    local = (fn, graphdef, treedef, tuple(sorted(static.items())), tuple(sorted(options.items())),
             _specs(leaves))
    found = _LOADED.get(local)
    if found is None:
        found = _LOADED[local] = _stored_or_compiled(fn, graphdef, args, static, options)
    return found


def loaded() -> list[tuple]:
    """(function, graphdef, compiled program) of each program this process has (the bench's
    profile reads their operations)."""
    return [(local[0], local[1], found) for local, found in _LOADED.items()]


def _stored_or_compiled(fn, graphdef, args: tuple, static: dict, options: dict):
    folder = compile_cache.programs_dir()
    if folder is None:
        return _compile(fn, graphdef, args, static, options)
    in_tree = jax.tree.structure((args, {}))
    path = folder / f"{key(fn, graphdef, args, static, options)}.bin"
    program = _load(path, in_tree)
    if program is None:
        hits = getattr(_hits, "count", 0)
        program = _compile(fn, graphdef, args, static, options)
        if getattr(_hits, "count", 0) == hits:  # compiled now, not read from JAX's cache
            _store(path, program)
    return program


def key(fn, graphdef, args: tuple, static: dict, options: dict) -> str:
    leaves, treedef = jax.tree.flatten(args)
    parts = [
        f"{fn.__module__}.{fn.__qualname__}", _source_digest(), repr(graphdef), str(treedef),
        repr([(shape, dtype, str(sharding)) for shape, dtype, sharding in _specs(leaves)]),
        repr(sorted(static.items())), repr(sorted(options.items())),
        jax.__version__, jaxlib.__version__, _jax_config(),
        os.environ.get("XLA_FLAGS", ""), repr(jax.devices()), _backend_version(),
        repr(sorted(cpu_tuning.cpu_flags())), cpu_tuning.cpuinfo("model name"),
    ]
    digest = hashlib.sha256(FORMAT)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _specs(leaves) -> tuple:
    """Each argument's (shape, dtype, sharding)."""
    return tuple((np.shape(x), str(getattr(x, "dtype", type(x))), getattr(x, "sharding", None))
                 for x in leaves)


def _jax_config() -> str:
    """Every jax config value but the caches' own settings (their folder, sizes, ...)."""
    return repr(sorted((name, value) for name, value in jax.config.values.items()
                       if "cache" not in name))


def _compile(fn, graphdef, args, static, options):
    return fn.lower(graphdef, *args, **static).compile(compiler_options=options or None)


def _load(path: Path, in_tree):
    """The stored program, or None when there is none; one that is damaged, written by other
    code or takes other arguments is removed (the next real compile stores it anew)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        if data.startswith(FORMAT):
            serialized, stored_in_tree, out_tree = pickle.loads(data[len(FORMAT):])
            if stored_in_tree == in_tree:
                return deserialize_and_load(serialized, stored_in_tree, out_tree)
    except Exception:  # noqa: BLE001, S110  # damage fails wherever the bytes stop making sense
        pass
    path.unlink(missing_ok=True)
    return None


def _store(path: Path, program) -> None:
    """Written whole or not at all (a rename)."""
    part = None
    try:
        data = FORMAT + pickle.dumps(serialize(program))
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, delete=False,
                                         suffix=".part") as f:
            part = Path(f.name)
            f.write(data)
        os.replace(part, path)
    except Exception:  # noqa: BLE001  # unserializable, or a full disk: not stored
        if part is not None:
            part.unlink(missing_ok=True)


@functools.cache
def _source_digest() -> str:
    root = Path(__file__).resolve().parents[1]  # the gemma3 package
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def _backend_version() -> str:
    client = jax.devices()[0].client
    return f"{client.platform} {client.platform_version}"
