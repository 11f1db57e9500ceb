"""load: from_pretrained checks the weight map as a bijection (every tensor used once, every
parameter set once, every shape checked); here we time it and count what was loaded."""

import jax
from flax import nnx


def test_load(loaded, case, record):
    count = None
    if loaded.model is not None:
        count = sum(x.size for x in jax.tree.leaves(nnx.state(loaded.model, nnx.Param)))
    expected = None if loaded.model is None else loaded.model.config.num_params()
    problems = record({"load_seconds": loaded.seconds,
                       "load_gb_per_s": loaded.checkpoint_bytes / 1e9 / loaded.seconds,
                       "checkpoint_bytes": loaded.checkpoint_bytes, "parameters": count,
                       "parameter_mismatch": None if count is None else abs(count - expected)})
    assert loaded.error is None, f"from_pretrained failed for {case.id}: {loaded.error}"
    assert not problems, (f"{case.id}: the loaded model has {count} parameters; its config "
                          f"says {expected}")
