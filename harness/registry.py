"""The models the harness knows: ids and hub repos from matrix/models.json (the single source
of the ids), plus what the harness adds per size: the config factory and the hub's shard layout.

matrix/ is not imported (it stands alone); its registry file is read as data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from gemma3 import Gemma3Config

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS_JSON = REPO_ROOT / "matrix" / "models.json"

# Facts sheet 4.1: shard count and the index's total_size (bf16 bytes) of each released size.
SHARDS = {"270m": 1, "1b": 1, "4b": 2, "12b": 5, "27b": 12}
TOTAL_BYTES = {
    "270m": 536_196_352,
    "1b": 1_999_771_904,
    "4b": 8_600_158_944,
    "12b": 24_374_650_080,
    "27b": 54_864_813_280,
}
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    id: str
    hub_repo: str
    size: str
    variant: str  # "pt" or "it"
    multimodal: bool

    def config(self) -> Gemma3Config:
        return Gemma3Config.for_size(self.size)

    @property
    def num_shards(self) -> int:
        return SHARDS[self.size]

    @property
    def hub_bytes(self) -> int:
        """The hub index's total_size: bf16 bytes of every stored tensor."""
        return TOTAL_BYTES[self.size]

    @property
    def shard_names(self) -> tuple[str, ...]:
        n = self.num_shards
        if n == 1:
            return (SINGLE_FILE,)
        return tuple(f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1))


def load_models(path: Path = MODELS_JSON) -> tuple[ModelSpec, ...]:
    """Every model of the registry, in its order (smallest first)."""
    rows = json.loads(path.read_text("utf-8"))["models"]
    models = []
    for row in rows:
        if row["size"] not in SHARDS:
            raise ValueError(f"{path}: model {row['id']!r} has size {row['size']!r}; the harness "
                             f"knows {sorted(SHARDS)}: add its shard layout to harness/registry.py")
        models.append(ModelSpec(row["id"], row["hub_repo"], row["size"], row["variant"],
                                bool(row["multimodal"])))
    return tuple(models)


MODELS = load_models()
BY_ID = {m.id: m for m in MODELS}


def get(model_id: str) -> ModelSpec:
    try:
        return BY_ID[model_id]
    except KeyError:
        raise ValueError(f"unknown model id {model_id!r}; expected one of "
                         f"{', '.join(BY_ID)} (matrix/models.json)") from None


def select(ids: str | None) -> list[ModelSpec]:
    """`--models a,b` -> those specs in registry order (smallest first); None -> all."""
    if not ids:
        return list(MODELS)
    wanted = [s.strip() for s in ids.split(",") if s.strip()]
    chosen = {get(i).id for i in wanted}
    return [m for m in MODELS if m.id in chosen]
