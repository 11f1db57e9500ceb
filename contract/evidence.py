"""Evidence kinds: what weights a result ran on, as each checkpoint source form names them, and
the checks each kind adds to a ✅ cell's requirement.

Schema v2 records the kind per model (`provenance.models[id].evidence`); a v1 file predates the
field, so its kind follows from the checkpoint's source form (v1 had no quantized source).
"""

from __future__ import annotations

SYNTHETIC, REAL, REAL_QUANTIZED = "synthetic", "real", "real_quantized"
KINDS = (REAL, REAL_QUANTIZED, SYNTHETIC)  # the order marks appear in a cell

# The kind of each checkpoint source form (`synthetic:<seed>`, `hub:<repo>@<rev>`,
# `local:<sha256>`, `gguf:<sha256>`).
KIND_OF_SOURCE = {"synthetic": SYNTHETIC, "hub": REAL, "local": REAL, "gguf": REAL_QUANTIZED}
V1_SOURCES = ("synthetic", "hub", "local")
# Real text only means something on real weights.
REQUIRED = {REAL: ("realtext",), REAL_QUANTIZED: ("realtext",), SYNTHETIC: ()}
# Real-text checks exist from schema version 2 on; a v1 file cannot have run them.
REQUIRED_SINCE_VERSION = 2


def kind_of_source(source: str) -> str:
    """The evidence kind of a checkpoint source string."""
    return KIND_OF_SOURCE[source.partition(":")[0]]


def evidence_kind(entry: dict) -> str:
    """The evidence kind of one provenance.models entry of a valid file (v1 or v2)."""
    return entry.get("evidence") or kind_of_source(entry["checkpoint"])


def kind_required(kind: str, schema_version: int) -> tuple[str, ...]:
    """The checks evidence of this kind adds to the required set, for a file of this version."""
    return REQUIRED[kind] if schema_version >= REQUIRED_SINCE_VERSION else ()
