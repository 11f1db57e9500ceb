"""load: from_pretrained checks the weight map as a bijection (every tensor used once, every
parameter set once, every shape checked); here we time it and count what was loaded."""

import jax
from flax import nnx


def test_load(loaded, case, record):
    count = devices = split = None
    if loaded.model is not None:
        params = jax.tree.leaves(nnx.state(loaded.model, nnx.Param))
        count = sum(x.size for x in params)
        # Where the weights went: on several devices the sharded path spreads them over all
        # (weight_devices) and splits most of them (split_fraction: elements of the arrays not
        # held whole by every device), so a run that fell back to one device shows.
        devices = len({d for x in params for d in x.sharding.device_set})
        split = sum(x.size for x in params if not x.sharding.is_fully_replicated) / count
    expected = None if loaded.model is None else loaded.model.config.num_params()
    problems = record({"load_seconds": loaded.seconds,
                       "load_gb_per_s": loaded.checkpoint_bytes / 1e9 / loaded.seconds,
                       "checkpoint_bytes": loaded.checkpoint_bytes, "parameters": count,
                       "weight_devices": devices, "split_fraction": split,
                       "parameter_mismatch": None if count is None else abs(count - expected)})
    assert loaded.error is None, f"from_pretrained failed for {case.id}: {loaded.error}"
    assert not problems, (f"{case.id}: the loaded model has {count} parameters; its config "
                          f"says {expected}")
