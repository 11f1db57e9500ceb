"""The reporter pipeline: load -> validate -> status -> merge -> render, for the CLI."""

from datetime import datetime
from pathlib import Path

from contract.code_hash import code_sha256
from contract.registry import Model

from .columns import column_for
from .load import Result, read_result
from .merge import Cell, merge
from .predictions import load_predictions
from .problem import Problem
from .render import render_block
from .status import evidence_from
from .validate import validate_result


def load_valid(files: list[tuple[Path, str]], registry: tuple[Model, ...],
               now: datetime | None = None) -> tuple[list[Result], list[Problem]]:
    """Parse and validate (path, display name) pairs: the valid results, and every problem."""
    results, problems = [], []
    for path, name in files:
        result, found = read_result(path, name)
        if result is not None:
            found = validate_result(result, registry, now)
        problems += found
        if result is not None and not found:
            results.append(result)
    return results, problems


def build_cells(results: list[Result], registry: tuple[Model, ...], code_hash: str
                ) -> tuple[dict[tuple[str, str], Cell], set[str]]:
    """The merged cells of these (valid) results, and the columns they bring: every valid
    result's column shows, even when the result proves nothing (all skipped)."""
    evidence = [item for result in results for item in evidence_from(result, registry, code_hash)]
    return merge(evidence), {_column(result) for result in results}


def build_block(results: list[Result], registry: tuple[Model, ...], root: Path,
                readme_dir: Path, predictions: dict | None = None) -> str:
    """The README block for these (valid) results, with staleness judged against `root`, and
    the planner's predictions (contract/predictions.json) where no result speaks."""
    cells, columns = build_cells(results, registry, code_sha256(root))
    predictions = load_predictions() if predictions is None else predictions
    return render_block(cells, columns, registry, results, readme_dir, predictions)


def _column(result: Result) -> str:
    provenance = result.data["provenance"]
    return column_for(provenance["backend"], provenance["device_kind"],
                      provenance["device_count"])
