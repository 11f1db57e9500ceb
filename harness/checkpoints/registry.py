"""The models the harness knows: contract/registry.py's entries (the one parse of models.json),
plus what the harness adds per size: the config factory and the hub release's shard layout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from contract.registry import Model, load_registry
from gemma3.config import Gemma3Config

REPO_ROOT = Path(__file__).resolve().parents[2]

# Shard count and the index's total_size (bf16 bytes) of each released size on the hub.
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
class ModelSpec(Model):
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


def load_models() -> tuple[ModelSpec, ...]:
    """Every model of the registry, in its order (smallest first)."""
    models = []
    for model in load_registry():
        if model.size not in SHARDS:
            raise ValueError(f"model {model.id!r} has size {model.size!r}; the harness knows "
                             f"{sorted(SHARDS)}: add its shard layout to {__name__}")
        models.append(ModelSpec(**dataclasses.asdict(model)))
    return tuple(models)


MODELS = load_models()
BY_ID = {m.id: m for m in MODELS}


def get(model_id: str) -> ModelSpec:
    try:
        return BY_ID[model_id]
    except KeyError:
        raise ValueError(f"unknown model id {model_id!r}; expected one of "
                         f"{', '.join(BY_ID)} (contract/models.json)") from None


def select(ids: str | None) -> list[ModelSpec]:
    """`--models a,b` -> those specs in registry order (smallest first); None -> all."""
    if not ids:
        return list(MODELS)
    wanted = [s.strip() for s in ids.split(",") if s.strip()]
    chosen = {get(i).id for i in wanted}
    return [m for m in MODELS if m.id in chosen]
