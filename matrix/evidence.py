"""How each evidence kind (contract/evidence.py) shows in the matrix: its mark in a cell and its
legend line."""

from dataclasses import dataclass

from contract.evidence import KINDS, REAL, REAL_QUANTIZED, SYNTHETIC


@dataclass(frozen=True)
class Mark:
    mark: str
    legend: str


# In contract.evidence.KINDS order: the order marks appear in a cell and rows in the legend.
MARKS: dict[str, Mark] = {kind: mark for kind, mark in zip(KINDS, (
    Mark("📦", "real weights: the released tensors (a `hub:` or `local:` checkpoint), checked on "
              "natural text too"),
    Mark("🗜️", "real weights, quantized: a GGUF conversion of the release (`gguf:<file sha256>`, "
               "tensor-type mix in the details), dequantized on both sides; not the released "
               "tensors"),
    Mark("🧪", "synthetic weights: seeded random values in the real checkpoint layout; they "
              "prove the code paths and parity against the reference on the same weights, not "
              "the quality of the model"),
), strict=True)}
assert list(MARKS) == [REAL, REAL_QUANTIZED, SYNTHETIC]


def marks(kinds) -> str:
    """The marks of these kinds, in table order, space-separated."""
    return " ".join(MARKS[k].mark for k in MARKS if k in set(kinds))
