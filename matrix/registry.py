"""The model registry (matrix/models.json): the rows of the matrix, in order."""

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REGISTRY = Path(__file__).with_name("models.json")

# Row groups of the table, in display order (as the hand-typed README had them).
GROUPS = (("it", "Instruction-tuned"), ("pt", "Pre-trained"))


@dataclass(frozen=True)
class Model:
    id: str
    hub_repo: str
    size: str
    variant: str
    multimodal: bool


def load_registry(path: Path = DEFAULT_REGISTRY) -> tuple[Model, ...]:
    """Read models.json; raise ValueError naming the entry when it is malformed."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))["models"]
    models = []
    variants = {variant for variant, _ in GROUPS}
    for index, entry in enumerate(entries):
        try:
            model = Model(**entry)
        except TypeError as exc:
            raise ValueError(f"{path}: models[{index}] has keys {sorted(entry)}: {exc}") from exc
        if model.variant not in variants:
            raise ValueError(
                f"{path}: model {model.id!r} has variant {model.variant!r}; "
                f"expected one of {sorted(variants)} (add a group in matrix/registry.py first)"
            )
        models.append(model)
    ids = [model.id for model in models]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: model ids repeat: {sorted(ids)}")
    return tuple(models)
