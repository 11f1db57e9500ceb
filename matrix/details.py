"""The per-cell details row: device, date, versions, parity margin, speed, result file."""

import os
from pathlib import Path
from urllib.parse import quote

from contract.checks import CELL_DTYPE

from .escape import Trusted, md
from .status import NOT_SUPPORTED, Evidence, cell_text, tests_by_model

NOTHING = "—"


def details_row(item: Evidence, readme_dir: Path) -> dict:
    """Display values for one non-empty cell; plain strings are escaped by the template."""
    provenance = item.result.data["provenance"]
    versions = provenance["versions"]
    measure = _measurements(item)
    return {
        "model": item.model,
        "column": item.column,
        "status": cell_text(item),
        "device": f"{provenance['device_kind']} ×{provenance['device_count']}",
        "memory": f"{provenance['memory_per_device_bytes'] / 2**30:.1f} GiB",
        "weights": _weights(item),
        "date": provenance["utc_time"][:10],
        "jax": versions["jax"],
        "transformers": versions["transformers"] or NOTHING,
        "max_abs_diff": _number(measure("logits", "max_abs_diff"), "{:.3g}"),
        "top1_agreement": _number(measure("logits", "top1_agreement"), "{:.3f}"),
        "decode": _number(measure("speed", "decode_tokens_per_s"), "{:.1f}"),
        "perplexity": _pair(measure("realtext", "perplexity"),
                            measure("realtext", "reference_perplexity"), "{:.2f}"),
        "bf16_kl": _pair(measure("bf16_fidelity", "kl_to_fp32"),
                         measure("bf16_fidelity", "reference_kl_to_fp32"), "{:.3g}"),
        "stale": "; ".join(item.stale) or NOTHING,
        "result": _result_link(item, readme_dir),
    }


def _weights(item: Evidence) -> str:
    if item.kind == NOT_SUPPORTED:
        return NOTHING
    entry = item.result.data["provenance"]["models"][item.model]
    source, _, value = entry["checkpoint"].partition(":")
    return _SOURCE_TEXT[source](value, entry)


def _hub(value: str, entry: dict) -> str:
    repo, _, revision = value.partition("@")
    return f"real, {repo} rev {revision[:7]}"


def _gguf(value: str, entry: dict) -> str:
    mix = entry["quantization"]["tensor_types"]
    types = ", ".join(f"{name} ×{mix[name]}" for name in sorted(mix, key=lambda n: (-mix[n], n)))
    return f"real, quantized: GGUF {value[:12]} ({types})"


# How each checkpoint source form reads in the details (docs/result-format.md).
_SOURCE_TEXT = {
    "hub": _hub,
    "local": lambda value, entry: f"real, local {value[:12]}",
    "gguf": _gguf,
    "synthetic": lambda value, entry: f"synthetic (seed {value})",
}


def _measurements(item: Evidence):
    """A lookup (check, name) -> the bfloat16 measurement of this model, or None."""
    found = {}
    for node, test in tests_by_model(item.result.data["tests"]).get(item.model, []):
        if node.dtype == CELL_DTYPE:
            # A failed check keeps its numbers too: they show by how much it failed.
            found[node.check] = test.get("metadata", {}).get("measurements", {})
    return lambda check, name: found.get(check, {}).get(name)


def _number(value, fmt: str) -> str:
    return NOTHING if value is None else fmt.format(value)


def _pair(ours, reference, fmt: str) -> str:
    if ours is None and reference is None:
        return NOTHING
    return f"{_number(ours, fmt)} / {_number(reference, fmt)}"


def _result_link(item: Evidence, readme_dir: Path) -> Trusted:
    # Relative to the README so the link works on GitHub and in a local checkout.
    target = Path(os.path.relpath(item.result.path.resolve(), readme_dir.resolve())).as_posix()
    return Trusted(f"[{md(item.result.path.name)}]({_href(target)})")


def _href(target: str) -> str:
    # Result file names are checked against their provenance; percent-encode the rest anyway.
    return quote(target, safe="/")
