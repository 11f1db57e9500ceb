"""Evidence kinds: what weights a result ran on, and the one table mapping each kind to its
mark, its legend line and the checks it adds to the required set.

Schema v2 records the kind per model (`provenance.models[id].evidence`); a v1 file predates the
field, so its kind follows from the checkpoint's source form (v1 had no quantized source).
"""

from dataclasses import dataclass

SYNTHETIC, REAL, REAL_QUANTIZED = "synthetic", "real", "real_quantized"


@dataclass(frozen=True)
class Kind:
    mark: str
    legend: str
    # Checks this kind adds to the ✅ requirement: real text only means something on real weights.
    required: tuple[str, ...]


# Table order is the order marks appear in a cell and rows appear in the legend.
KINDS: dict[str, Kind] = {
    REAL: Kind("📦", "real weights: the released tensors (a `hub:` or `local:` checkpoint), "
                    "checked on natural text too", ("realtext",)),
    REAL_QUANTIZED: Kind("🗜️", "real weights, quantized: a GGUF conversion of the release "
                              "(`gguf:<file sha256>`, tensor-type mix in the details), dequantized "
                              "on both sides; not the released tensors", ("realtext",)),
    SYNTHETIC: Kind("🧪", "synthetic weights: seeded random values in the real checkpoint "
                         "layout; they prove the code paths and parity against the reference on "
                         "the same weights, not the quality of the model", ()),
}

# v1 files: the checkpoint source form decides the kind (`synthetic:`, `hub:`, `local:`).
V1_KIND_BY_SOURCE = {"synthetic": SYNTHETIC, "hub": REAL, "local": REAL}
# Real-text checks exist from schema version 2 on; a v1 file cannot have run them.
REQUIRED_SINCE_VERSION = 2


def evidence_kind(entry: dict) -> str:
    """The evidence kind of one provenance.models entry of a valid file (v1 or v2)."""
    return entry.get("evidence") or V1_KIND_BY_SOURCE[entry["checkpoint"].partition(":")[0]]


def kind_required(kind: str, schema_version: int) -> tuple[str, ...]:
    """The checks evidence of this kind adds to the required set, for a file of this version."""
    return KINDS[kind].required if schema_version >= REQUIRED_SINCE_VERSION else ()


def marks(kinds) -> str:
    """The marks of these kinds, in table order, space-separated."""
    return " ".join(KINDS[k].mark for k in KINDS if k in set(kinds))
