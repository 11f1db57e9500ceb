"""Predicted cells: for the fixed accelerator columns nobody has run yet, the harness's memory
planner says from the device's memory alone whether a model can fit (contract/predictions.json,
written by `python -m harness.memory.predict`; a test keeps it current). A prediction is never
evidence: it only fills a cell no valid result speaks about, with its own mark, it never
appears in the details table, and the CPU column has none (host RAM varies too much).

- refused (`⛔️ predicted: needs 59.4 GiB > 16.0 GiB per TPU v5e chip`): the planner's need stays above
  the device's memory even if the planner overestimates by as much as it has ever been measured
  to;
- fits (`❔ Needs check (predicted 13.9 of 60.0 GiB per H100 80GB)`): fits even with the memory
  check's slack on top;
- tight (`❔ Needs check (tight: 29.8 of 30.0 GiB per A100 40GB)`): in between.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from .escape import Trusted, md

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "contract" / "predictions.json"
REFUSED, TIGHT, FITS = "refused", "tight", "fits"
PREDICTED_MARK = "⛔️ predicted"
GIB = 2**30


class PredictionsError(ValueError):
    """contract/predictions.json is missing a field or holds a wrong value."""


@dataclass(frozen=True)
class Prediction:
    verdict: str  # REFUSED, TIGHT or FITS
    needs_bytes: int
    has_bytes: int
    per: str  # the card or chip one figure is for: "A100 40GB", "TPU v5e chip"
    device: str  # the device the figures are for, e.g. "TPU v5e"

    def text(self) -> Trusted:
        needs, has, per = self.needs_bytes / GIB, self.has_bytes / GIB, md(self.per)
        if self.verdict == REFUSED:
            return Trusted(f"{PREDICTED_MARK}: needs {needs:.1f} GiB &gt; {has:.1f} GiB per {per}")
        tight = "tight: " if self.verdict == TIGHT else "predicted "
        return Trusted(f"❔ Needs check ({tight}{needs:.1f} of {has:.1f} GiB per {per})")


def load_predictions(path: Path = DEFAULT_FILE) -> dict[tuple[str, str], Prediction]:
    """{(model id, column): Prediction}; no file: none."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text("utf-8"))
    found = {}
    for model, columns in data.get("cells", {}).items():
        for column, cell in columns.items():
            try:
                prediction = Prediction(cell["verdict"], int(cell["needs_bytes"]),
                                        int(cell["has_bytes"]), str(cell["per"]),
                                        str(cell["device"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise PredictionsError(f"{path}: cells[{model!r}][{column!r}] is malformed: "
                                       f"{exc}") from None
            if prediction.verdict not in (REFUSED, TIGHT, FITS):
                raise PredictionsError(f"{path}: cells[{model!r}][{column!r}].verdict is "
                                       f"{prediction.verdict!r}; expected refused, tight or fits")
            found[(model, column)] = prediction
    return found
