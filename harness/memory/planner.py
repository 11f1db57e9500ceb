"""Predicts the memory a model's checks need, before anything is loaded, and refuses what
cannot fit: "not supported: needs X GiB > has Y GiB", per dtype.

The JAX process needs, per device: parameters in the dtype (split over the accelerators), the KV
cache of the longest generation (gemma3.nn.cache.cache_bytes), activations of the longest
prompt, the logits and reference arrays it compares, a runtime overhead, and on XLA:CPU float32
working copies of the weights (WEIGHT_COPIES, measured). The reference process needs the torch
model in the dtype, its logits and hidden states, and the torch/transformers runtime; where it
runs (one GPU, all GPUs, host RAM) is harness/memory/placement.py's choice. The two never run
at the same time, so a dtype fits when each fits where it runs.

What the JAX side has on a GPU: the model processes run with XLA_PYTHON_CLIENT_PREALLOCATE=false
(harness/system/threads.py), so XLA's allocator grows on demand up to its limit, which stays
XLA_PYTHON_CLIENT_MEM_FRACTION (0.75) of the device; `memory_stats()` reports that limit as
`bytes_limit` and what is allocated as `bytes_in_use`, and the fingerprint's available bytes are
the smallest `bytes_limit - bytes_in_use` over the devices. The CUDA context lives outside that
pool. The GPU figures below are the CPU-measured formulas plus assumptions marked NOT YET
MEASURED; every accelerator result records predicted against measured peak per model and dtype
(the memory check), so the first GPU run says how to correct them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from contract.refusal import gib, memory_reason
from gemma3.config import DTYPES, Gemma3Config
from gemma3.generation.loop import bucket_sizes
from gemma3.nn.cache import cache_bytes
from harness.memory import placement
from harness.parity.prompts import BATCH_LENGTHS, GENERATE_TOKENS, LOGITS_TOKENS, make_prompts

GiB = 2**30
ITEMSIZE = {name: d.itemsize for name, d in DTYPES.items()}
# CPU (measured): the process with jax, flax, numpy and the compiled programs of the checks.
# Accelerators (NOT YET MEASURED): device memory beyond the arrays counted here, inside XLA's
# pool: cuBLAS/cuDNN workspaces and autotuning scratch on a GPU, program buffers on a TPU;
# 1.0 GiB assumed.
JAX_OVERHEAD = {"cpu": int(1.2 * GiB), None: int(1.0 * GiB)}
# Weight-sized copies XLA holds at the peak, in float32 units of all weights, keyed by
# (backend, dtype). Since every weight dot is bf16 x bf16 with float32 accumulation (1-row dots
# padded) and the loader adopts its host copies, XLA:CPU holds bf16 weights once: measured
# (jax 0.10.2, Xeon, peak RSS growth over the runtime through load, prefill and a decode loop)
# 2.09 / 2.03 bytes per parameter for the synthetic 270m / 1b in bf16, 4.09 in float32; the
# harness's 4b bf16 checks (multimodal at full size included) peaked at 13.7 GiB. Before: bf16
# 3.74 / 9.10 GiB for all checks of the 270m / 1b (1.75 float32 copies). float32 keeps 0.2
# from the old measurement (2.92 / 6.07 GiB), an upper estimate: loading no longer copies
# each tensor twice. Accelerators run bf16 natively: none assumed (NOT YET MEASURED).
WEIGHT_COPIES = {("cpu", "bfloat16"): 0.0, ("cpu", "float32"): 0.2, None: 0.0}
TORCH_OVERHEAD = int(1.5 * GiB)  # python + torch + transformers, in host RAM
LIVE_LAYERS = 2  # XLA reuses activation buffers; about two layers' worth are live at once
# SigLIP's [heads, 4096, 4096] attention scores: the float32 scores, their bf16 rounding and the
# probabilities are live together. With 2 the 4b bf16 checks measured 13.7 GiB against 13.1
# predicted; with 3, 14.1 predicted (the 1.07 GB a score array takes at full size).
VISION_LIVE_SCORES = 3


@dataclasses.dataclass(frozen=True)
class Need:
    params: int
    kv_cache: int
    activations: int
    outputs: int  # logits / hidden states compared, ours and the reference's
    overhead: int

    @property
    def total(self) -> int:
        return self.params + self.kv_cache + self.activations + self.outputs + self.overhead


@dataclasses.dataclass(frozen=True)
class Verdict:
    dtype: str
    jax: Need  # per device
    reference: placement.Outcome
    jax_available: int  # per device

    @property
    def jax_fits(self) -> bool:
        return self.jax.total <= self.jax_available

    @property
    def fits(self) -> bool:
        return self.jax_fits and self.reference.placement is not None

    @property
    def predicted(self) -> int:
        return max(self.jax.total, self.reference.need)

    @property
    def available(self) -> int:
        """The least either side has: what a refusal's `has` figure can be no less than."""
        return min(self.jax_available, self.reference.has)

    def reason(self) -> str | None:
        """The JAX side's refusal, the reference's, or both (`needs ...; reference needs ...`)."""
        parts = [] if self.jax_fits else [memory_reason(self.jax.total, self.jax_available)]
        if self.reference.reason:
            parts.append(self.reference.reason)
        return "; ".join(parts) or None


def _longest_generation(cfg: Gemma3Config) -> tuple[int, int]:
    """(prompt bucket, cache length) as gemma3.generate sizes them for the generate check,
    including a restart after a near-tie with the prompt grown by the whole continuation."""
    prompt = make_prompts(cfg).generate.shape[1] + GENERATE_TOKENS
    bucket, _, cache_length = bucket_sizes(prompt, GENERATE_TOKENS)
    return bucket, cache_length


def jax_need(cfg: Gemma3Config, dtype: str, backend: str, devices: int = 1,
             host_devices: int = 1) -> Need:
    """Per device. With several accelerators the parameters are split over all of them (fsdp
    splits the model width of every weight; the norms it replicates are a rounding error); the
    KV cache, activations and compared outputs are counted whole on each, since the checks'
    batches of 1 and 2 do not divide over fsdp and are replicated. host_devices: CPU devices
    XLA emulates in one host's RAM, each holding its replica of the KV cache and activations
    (measured, the 270m over 8: peak 4.21 / 3.53 GB in float32 / bf16 against 3.19 / 2.41
    predicted for one device, +1.02 / +1.12 GB; the seven extra replicas count 1.07 / 0.91)."""
    text, item = cfg.text, ITEMSIZE[dtype]
    bucket, cache_len = _longest_generation(cfg)
    per_token = (3 * text.intermediate_size + 2 * text.hidden_size
                 + (text.num_attention_heads + 2 * text.num_key_value_heads) * text.head_dim)
    scores = text.num_attention_heads * bucket * bucket * 4  # eager softmax in float32
    activations = LIVE_LAYERS * (bucket * per_token * 4 + scores)
    if cfg.vision is not None:  # the SigLIP tower: 4096 patches, full attention, float32 scores
        v = cfg.vision
        activations += (VISION_LIVE_SCORES * v.num_attention_heads * v.num_patches**2 * 4
                        + LIVE_LAYERS * v.num_patches
                        * (v.intermediate_size + 4 * v.hidden_size) * 4)
    rows = LOGITS_TOKENS + 2 * BATCH_LENGTHS[0]
    outputs = 3 * rows * text.vocab_size * 4  # ours (dtype, then float32) and the reference's
    outputs += 2 * (text.num_hidden_layers + 1) * LOGITS_TOKENS * text.hidden_size * 4
    overhead = JAX_OVERHEAD.get(backend, JAX_OVERHEAD[None])
    copies = WEIGHT_COPIES.get((backend, dtype), WEIGHT_COPIES[None])
    overhead += int(copies * cfg.num_params() * 4)
    return Need(params=-(-cfg.num_params() * item // devices),
                kv_cache=host_devices * cache_bytes(text, 2, cache_len, DTYPES[dtype]),
                activations=host_devices * activations, outputs=outputs, overhead=overhead)


def reference_need(cfg: Gemma3Config, dtype: str) -> placement.ReferenceNeed:
    text, item = cfg.text, ITEMSIZE[dtype]
    logits = 2 * (LOGITS_TOKENS + 2 * BATCH_LENGTHS[0]) * text.vocab_size * 4
    hidden = 2 * (text.num_hidden_layers + 1) * LOGITS_TOKENS * text.hidden_size * 4
    _, cache_len = _longest_generation(cfg)
    kv = cache_bytes(text, 2, cache_len, np.float32)
    vision = 0
    if cfg.vision is not None:  # eager attention over 4096 patches, and the prompt's logits
        v = cfg.vision
        vision = 2 * v.num_attention_heads * v.num_patches**2 * 4
        vision += (LOGITS_TOKENS + v.num_patches // 16) * text.vocab_size * 4
    embedding = text.vocab_size * text.hidden_size
    layer = (text.num_params() - embedding - text.hidden_size) // text.num_hidden_layers
    return placement.ReferenceNeed(weights=cfg.num_params() * item,
                                   work=logits + hidden + kv + vision,
                                   largest_module=max(embedding, layer) * item,
                                   host_runtime=TORCH_OVERHEAD)


def jax_devices(fingerprint: dict) -> tuple[int, int]:
    """(devices the parameters are split over, CPU devices sharing the host's RAM): every
    accelerator, or on CPU one and the emulated devices (their parameter shards add up to the
    whole model in the one RAM, and each holds its own replicated arrays)."""
    count = int(fingerprint.get("device_count", 1))
    return (1, count) if fingerprint["backend"] == "cpu" else (count, 1)


def plan(cfg: Gemma3Config, dtype: str, fingerprint: dict) -> Verdict:
    """fingerprint: harness.system.fingerprint's dict (backend, device_count, available_bytes
    per device, and the reference block placement.place reads)."""
    backend = fingerprint["backend"]
    return Verdict(dtype=dtype, jax=jax_need(cfg, dtype, backend, *jax_devices(fingerprint)),
                   reference=placement.place(reference_need(cfg, dtype),
                                             fingerprint["reference"]),
                   jax_available=int(fingerprint["available_bytes"]))


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    verdicts: tuple[Verdict, ...]

    @property
    def run_dtypes(self) -> list[str]:
        return [v.dtype for v in self.verdicts if v.fits]

    @property
    def refused(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.fits]

    def reason(self) -> str | None:
        """All refused: `needs 49.2 GiB > has 21.7 GiB (bfloat16; float32 57.5 GiB)`, the
        smallest need first. Some refused: `float32 not supported: needs ... > has ...`."""
        refused = sorted(self.refused, key=lambda v: v.predicted)
        if not refused:
            return None
        if self.run_dtypes:
            return "; ".join(f"{v.dtype} not supported: {v.reason()}" for v in refused)[:200]
        others = "".join(f"; {v.dtype} {gib(v.predicted)}" for v in refused[1:])
        return f"{refused[0].reason()} ({refused[0].dtype}{others})"[:200]

    @property
    def predicted_bytes(self) -> int:
        fitting = [v.predicted for v in self.verdicts if v.fits]
        return max(fitting) if fitting else min(v.predicted for v in self.verdicts)

    @property
    def available_bytes(self) -> int:
        return min(v.available for v in self.verdicts)

    def reference_placements(self) -> dict[str, placement.Placement]:
        """dtype -> where its reference runs, for the dtypes that run."""
        return {v.dtype: v.reference.placement for v in self.verdicts
                if v.fits and v.reference.placement is not None}


def plan_model(cfg: Gemma3Config, dtypes: list[str], fingerprint: dict) -> ModelPlan:
    return ModelPlan(tuple(plan(cfg, d, fingerprint) for d in dtypes))
