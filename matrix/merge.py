"""Choose, per (model, column) cell, the one piece of evidence the matrix shows."""

from .status import NOT_SUPPORTED, RUNS, Evidence


def merge(evidence: list[Evidence]) -> dict[tuple[str, str], Evidence]:
    """The winning evidence for every cell that has any, keyed by (model id, column)."""
    cells: dict[tuple[str, str], list[Evidence]] = {}
    for item in evidence:
        cells.setdefault((item.model, item.column), []).append(item)
    return {key: pick(items) for key, items in cells.items()}


def pick(items: list[Evidence]) -> Evidence:
    """Attempts beat refusals; then the newest wins; ties go to current code, then to failure."""
    # Machines in one column differ (A100 40GB vs 80GB): a run that happened, on whatever
    # machine of the class, outranks the planner's refusal on a smaller one, whatever the dates.
    attempts = [item for item in items if item.kind != NOT_SUPPORTED]
    pool = attempts or items
    return max(pool, key=_rank)


def _rank(item: Evidence) -> tuple:
    # The file name ends the tie-break so the choice never depends on the order of reading.
    return (item.time, not item.stale, item.kind != RUNS, item.result.name)
