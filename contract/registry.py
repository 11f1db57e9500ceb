"""The model registry (contract/models.json): the ids the harness runs and the matrix's rows, in
order (smallest first)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MODELS_JSON = Path(__file__).with_name("models.json")
VARIANTS = ("it", "pt")  # instruction-tuned, pre-trained


@dataclass(frozen=True)
class Model:
    id: str
    hub_repo: str
    size: str  # "270m", "1b", "4b", "12b", "27b"
    variant: str  # one of VARIANTS
    multimodal: bool


def load_registry(path: Path = MODELS_JSON) -> tuple[Model, ...]:
    """Read models.json; raise ValueError naming the entry when it is malformed."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))["models"]
    models = []
    for index, entry in enumerate(entries):
        try:
            model = Model(**entry)
        except TypeError as exc:
            raise ValueError(f"{path}: models[{index}] has keys {sorted(entry)}: {exc}") from exc
        if model.variant not in VARIANTS:
            raise ValueError(f"{path}: model {model.id!r} has variant {model.variant!r}; "
                             f"expected one of {sorted(VARIANTS)}")
        models.append(model)
    ids = [model.id for model in models]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: model ids repeat: {sorted(ids)}")
    return tuple(models)
