"""What runs fastest (and leanest) on the CPU at hand, as data keyed by the CPU's flags.

XLA:CPU facts this table rests on (jaxlib 0.10.2, measured on a Xeon with AMX and an AMD EPYC
Zen 2; see the README's Speed section):
- A bf16 x bf16 dot with float32 accumulation (`preferred_element_type=float32`) and >= 2 rows
  runs on the library path without a float32 copy of the weight. A 1-row (matrix-vector) bf16
  dot does not: XLA converts the whole weight to float32 first. Padding it to 2 rows avoids
  the copy (PAD_SINGLE_ROW).
- oneDNN is reached for dots only with both `xla_cpu_use_onednn` and
  `xla_cpu_experimental_onednn_fusion_type=dot`, settable per compiled program.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax

# (flags the CPU must have, {(program, weight dtype): XLA compiler options}); rows are tried in
# order, the first whose flags the CPU has wins. Measured on the Xeon (avx512_bf16, amx_bf16),
# synthetic gemma-3-270m, 1024-token prefill: oneDNN 190 vs 192 tok/s in float32 and 424 vs
# 420 in bfloat16 (no gain; single dots gained 1.15x in float32); 1-row decode dots ran slower
# with it. So no row turns it on yet: add one where a CPU measures faster.
ONEDNN_OPTIONS = {"xla_cpu_use_onednn": True,
                  "xla_cpu_experimental_onednn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}
CHOICES: tuple[tuple[tuple[str, ...], dict], ...] = (
    ((), {}),
)


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The host CPU's feature flags (Linux /proc/cpuinfo); empty where unreadable."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def pad_single_row(dtype) -> bool:
    """Whether a 1-row dot against a weight of this dtype is padded to 2 rows: on XLA:CPU a
    bf16 matrix-vector dot makes a float32 copy of the whole weight otherwise."""
    return jax.default_backend() == "cpu" and jax.numpy.dtype(dtype).itemsize < 4


def compiler_options(program: str, dtype: str | None = None) -> dict:
    """XLA compiler options for one of our programs ('prefill', 'decode') with weights of
    `dtype` on this machine; {} off CPU."""
    if jax.default_backend() != "cpu":
        return {}
    flags = cpu_flags()
    for needs, options in CHOICES:
        if set(needs) <= flags:
            return dict(options.get((program, dtype), {}))
    return {}
