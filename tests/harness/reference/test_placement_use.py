"""The reference process on the planner's placement: a spread that accelerate could not keep on
the GPUs is an error naming the modules, never a silent run from the host or disk."""

import types

import pytest

from harness.reference import transformers_run


def model_on(device_map: dict):
    return types.SimpleNamespace(hf_device_map=device_map)


def test_a_spread_kept_on_the_gpus_is_accepted():
    model = model_on({"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 1})
    assert transformers_run._on_gpus_only(model) is model


def test_modules_left_on_the_host_or_disk_fail_naming_them():
    model = model_on({"model.embed_tokens": 0, "model.layers.61": "cpu", "lm_head": "disk"})
    with pytest.raises(RuntimeError, match=r"placed 2 module\(s\) off the GPUs "
                                           r"\(model.layers.61 -> cpu, lm_head -> disk\)"):
        transformers_run._on_gpus_only(model)
