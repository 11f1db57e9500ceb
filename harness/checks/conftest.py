"""Fixtures of the checks. `python -m harness` runs this directory once per model, in its own
process, with HARNESS_RUN naming a JSON run spec (harness/run/runner.py writes it): the model, the
dtypes that fit, the checkpoint, the reference outputs per dtype, the planner's predictions.

Every check is parametrized by `case`, whose id `<model id>-<dtype>` is the key the matrix
joins on (test_logits[gemma-3-1b-it-bfloat16]). The JAX model is loaded once per case
(session scope: pytest keeps one case's model at a time and frees it before the next).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from contract.bounds import bounds, check_bounds, judge
from contract.checks import CHECK_ORDER, DTYPE_ORDER, case_id
from gemma3.runtime import compile_cache, sharding
from harness.checkpoints import registry
from harness.memory import measure as memory
from harness.parity.greedy import greedy_parity
from harness.parity.prompts import make_prompts
from harness.parity.realtext import capped
from harness.reference.store import load_outputs

RUN_ENV = "HARNESS_RUN"
MARKERS = {
    "multimodal_only": "a check that needs the vision tower (4b and up)",
    "real_weights_only": "a check on natural text: meaningless on synthetic (random) weights",
    "bfloat16_only": "a check of how bf16 compares with fp32: collected for bfloat16 only",
}

# fp32 parity means full-precision matmuls (XLA on GPU would use TF32 by default).
jax.config.update("jax_default_matmul_precision", "highest")
# Each model's checks run in a fresh process: compiled programs come from disk after the first.
compile_cache.enable()
# On a multi-host slice or cluster (its environment variables set), join it before any device
# is touched; on one host this does nothing.
sharding.initialize_distributed()


@dataclasses.dataclass(frozen=True)
class Case:
    model: str
    dtype: str

    @property
    def id(self) -> str:
        return case_id(self.model, self.dtype)

    @property
    def spec(self) -> registry.ModelSpec:
        return registry.get(self.model)


def run_spec() -> dict | None:
    path = os.environ.get(RUN_ENV)
    return json.loads(Path(path).read_text("utf-8")) if path else None


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    spec = run_spec()
    if spec is None:
        skip = pytest.mark.skip(reason=f"harness checks need {RUN_ENV}; run `python -m harness`")
        metafunc.parametrize("case", [pytest.param(None, marks=skip, id="no-run")],
                             scope="session")
        return
    cases = [Case(spec["model"], d) for d in spec["dtypes"]]
    metafunc.parametrize("case", cases, ids=[c.id for c in cases], scope="session")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    spec = run_spec()
    if spec is None:
        return
    # Not collected (so never counted as passed or skipped): a vision check on a text-only
    # model, a real-text check on synthetic weights, a bf16-vs-fp32 check in float32.
    keep, drop = [], []
    for item in items:
        (drop if _not_applicable(item, spec) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    keep.sort(key=_order)
    items[:] = keep


def _not_applicable(item, spec: dict) -> bool:
    case = item.callspec.params.get("case") if hasattr(item, "callspec") else None
    return any((
        item.get_closest_marker("multimodal_only") and not registry.get(spec["model"]).multimodal,
        item.get_closest_marker("real_weights_only") and spec["evidence"] == "synthetic",
        item.get_closest_marker("bfloat16_only") and case is not None
        and case.dtype != "bfloat16",
    ))


def _order(item) -> tuple:
    case = item.callspec.params.get("case") if hasattr(item, "callspec") else None
    check = item.originalname.removeprefix("test_")
    return (DTYPE_ORDER.index(case.dtype) if case else -1,
            CHECK_ORDER.index(check) if check in CHECK_ORDER else len(CHECK_ORDER))


@pytest.fixture(scope="session")
def run() -> dict:
    spec = run_spec()
    if spec is None:
        pytest.skip(reason=f"harness checks need {RUN_ENV}; run `python -m harness`")
    return spec


@dataclasses.dataclass
class Loaded:
    model: object | None
    seconds: float
    error: str | None
    checkpoint_bytes: int


@pytest.fixture(scope="session")
def loaded(case, run):
    """The JAX model of this case, or the load error (reported by the load check)."""
    import gemma3

    gc.collect()
    memory.reset_peak()  # this dtype's peak starts here
    path = Path(run["checkpoint"])
    # A GGUF checkpoint is one file; a directory holds safetensors shards.
    size = path.stat().st_size if path.is_file() else sum(
        p.stat().st_size for p in path.glob("*.safetensors"))
    start = time.perf_counter()
    try:
        # Several devices: the sharded path over all of them (fsdp), so results land in the
        # (Nx) columns; one device: the plain path.
        model = gemma3.from_pretrained(path, dtype=case.dtype, mesh=sharding.default_mesh())
        error = None
    except Exception as e:  # noqa: BLE001 - reported by test_load with its message
        model, error = None, f"{type(e).__name__}: {e}"
    result = Loaded(model, time.perf_counter() - start, error, size)
    yield result
    result.model = None
    gc.collect()


@pytest.fixture(scope="session")
def model(loaded):
    if loaded.model is None:
        pytest.fail(f"the model did not load, so this check cannot run: {loaded.error}")
    return loaded.model


@pytest.fixture(scope="session")
def reference(case, run) -> dict[str, np.ndarray]:
    return load_outputs(Path(run["reference_dirs"][case.dtype]))


@pytest.fixture(scope="session")
def prompts(case, run):
    return make_prompts(case.spec.config(), run["seed"])


@pytest.fixture(scope="session")
def limits(case, run):
    return bounds(case.dtype, run["backend"])


@pytest.fixture(scope="session")
def logit_scale(reference) -> float:
    """The reference's logit scale (max |logit| of the logits prompt): bounds are relative."""
    return float(np.abs(reference["logits"]).max())


@pytest.fixture(scope="session")
def greedy(model, reference, prompts, limits, logit_scale):
    """One greedy generation crossing the sliding window, shared by generate and speed."""
    return greedy_parity(model, prompts.generate, reference["gen_tokens"],
                         reference["gen_margin"], limits.tie_rel * logit_scale)


@pytest.fixture
def record(json_metadata, case, run, request):
    """record(measurements, texts=None) stores {model, dtype, check, measurements, bounds} (and
    the texts a real-text check shows, {name: [str]}) for the result file, and returns what the
    measurements break of the check's bounds (contract.bounds; [] = the check passes). The
    checks assert exactly that, so the reporter re-derives the same verdict from the file."""
    check = request.node.originalname.removeprefix("test_")
    applied = check_bounds(check, case.dtype, run["backend"])

    def store(measurements: dict, texts: dict[str, list[str]] | None = None) -> list[str]:
        finite = _finite(measurements)
        json_metadata.update({"model": case.model, "dtype": case.dtype, "check": check,
                              "measurements": finite,
                              "bounds": [b.as_record() for b in applied]})
        if texts is not None:
            json_metadata["texts"] = {key: capped(values) for key, values in texts.items()}
        return judge(applied, finite)
    return store


def _finite(values: dict) -> dict:
    """Numbers only, NaN/inf as null (the result schema refuses non-finite numbers)."""
    out: dict[str, int | float | None] = {}
    for key, value in values.items():
        if isinstance(value, bool) or value is None:
            out[key] = None if value is None else int(value)
        elif isinstance(value, (int, np.integer)):
            out[key] = int(value)
        else:
            value = float(value)
            out[key] = value if np.isfinite(value) else None
    return out
