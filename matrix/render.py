"""Render the matrix block (table, legend, details) from merged cells with a Jinja template."""

import textwrap
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from contract.registry import Model

from .columns import ordered_columns
from .details import details_row
from .escape import Trusted, finalize, md
from .evidence import MARKS
from .load import Result
from .merge import Cell
from .policy import MIN_JAX
from .predictions import PREDICTED_MARK, REFUSED, Prediction
from .status import NEEDS_CHECK, STALE_MARK, cell_text

TEMPLATES = Path(__file__).with_name("templates")
# Row groups of the table, in display order (as the hand-typed README had them).
GROUPS = (("it", "Instruction-tuned"), ("pt", "Pre-trained"))


def render_block(cells: dict[tuple[str, str], Cell], columns_seen: set[str],
                 registry: tuple[Model, ...], results: list[Result], readme_dir: Path,
                 predictions: dict[tuple[str, str], Prediction] | None = None) -> str:
    """The text between the README markers; the same inputs always give the same bytes. A
    prediction fills only a cell that no valid result speaks about."""
    columns = ordered_columns(columns_seen)
    predictions = predictions or {}
    grouped = [(title, [m for m in registry if m.variant == variant]) for variant, title in GROUPS]
    groups = [{"title": title, "rows": [_row(m, columns, cells, predictions) for m in models]}
              for title, models in grouped]
    # One details row per weight kind a cell has evidence of (the shown one first).
    details = [
        details_row(item, readme_dir)
        for _, models in grouped for model in models for column in columns
        if (model.id, column) in cells for item in cells[(model.id, column)].listed
    ]
    return _environment().get_template("matrix.md.j2").render(
        columns=columns, groups=groups, details=details, newest=_newest(results),
        count=len(results), needs_check=NEEDS_CHECK, legend=_legend(),
        predicted=PREDICTED_MARK if any(p.verdict == REFUSED for key, p in predictions.items()
                                        if key not in cells) else None,
        stale=STALE_MARK, min_jax=f"{MIN_JAX[0]}.{MIN_JAX[1]}",
    )


def _row(model: Model, columns: list[str], cells: dict, predictions: dict) -> dict:
    link = Trusted(f"[{md(model.id)}](https://huggingface.co/{quote(model.hub_repo)})")
    return {"link": link, "cells": [_cell_text(cells.get((model.id, c)),
                                               predictions.get((model.id, c)))
                                    for c in columns]}


def _legend() -> list[Trusted]:
    # The project's own text (not from results), wrapped like the rest of the legend.
    return [Trusted(textwrap.fill(f"{kind.mark} {kind.legend}.", width=98, initial_indent="- ",
                                  subsequent_indent="  ")) for kind in MARKS.values()]


def _cell_text(cell: Cell | None, prediction: Prediction | None) -> Trusted:
    if cell is not None:
        return cell.text()  # evidence always outranks a prediction
    return cell_text(None) if prediction is None else prediction.text()


def _newest(results: list[Result]) -> str | None:
    # A date from the data, not the clock, so re-rendering never changes the bytes.
    times = [result.data["provenance"]["utc_time"] for result in results]
    return max(times)[:10] if times else None


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        finalize=finalize,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # finalize escapes for Markdown, which HTML autoescape does not cover
    )
