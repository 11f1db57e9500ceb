"""Choose, per (model, column) cell, the evidence the matrix shows, the best evidence of each
weight kind (synthetic, real, real quantized) beside it, and the current attempts that
disagree with it (a ❌ from one machine where another's ✅ is shown: newest-wins alone would hide
a regression on one machine or a flake on another)."""

from dataclasses import dataclass

from contract.evidence import KINDS

from .escape import Trusted
from .status import FAILS, NOT_SUPPORTED, RUNS, Evidence, cell_text, status_text

# Keyed by Evidence.weights, None where nothing was loaded (a refusal): .get gives that 0.
_KIND_ORDER: dict[str | None, int] = {kind: index for index, kind in enumerate(KINDS)}


@dataclass(frozen=True)
class Cell:
    """A cell: `shown` decides its status; `by_kind` holds the winner of each weight kind present
    (shown's first, then table order), which the details table lists one row each."""

    shown: Evidence
    by_kind: tuple[Evidence, ...]
    # Current attempts (✅ or ❌, not stale) of the shown weight kind whose status differs from
    # the shown one; `attempts` counts all current attempts of that kind, the shown one included.
    dissent: tuple[Evidence, ...] = ()
    attempts: int = 0

    @property
    def listed(self) -> tuple[Evidence, ...]:
        """What the details table lists: each kind's winner, then the dissenting attempts."""
        return self.by_kind + tuple(item for item in self.dissent if item not in self.by_kind)

    def text(self) -> Trusted:
        return cell_text(self.shown, self.weights, self.dissent, self.attempts)

    @property
    def weights(self) -> tuple[str, ...]:
        """The kinds whose own winner has the shown status: the marks the cell carries."""
        status = status_text(self.shown)
        return tuple(item.weights for item in self.by_kind
                     if item.weights and status_text(item) == status)


def merge(evidence: list[Evidence]) -> dict[tuple[str, str], Cell]:
    """The cell of every (model id, column) that has any evidence."""
    cells: dict[tuple[str, str], list[Evidence]] = {}
    for item in evidence:
        cells.setdefault((item.model, item.column), []).append(item)
    return {key: _cell(items) for key, items in cells.items()}


def _cell(items: list[Evidence]) -> Cell:
    shown = pick(items)
    groups: dict[str | None, list[Evidence]] = {}
    for item in items:
        groups.setdefault(item.weights, []).append(item)
    winners = [pick(group) for group in groups.values()]
    # A refusal beside a run says nothing the run does not: only runs are listed then.
    runs = [item for item in winners if item.kind != NOT_SUPPORTED] or winners
    by_kind = tuple(sorted(runs, key=lambda item: (item is not shown,
                                                   _KIND_ORDER.get(item.weights, 0))))
    current = [item for item in items if item.kind in (RUNS, FAILS) and not item.stale
               and item.weights == shown.weights]
    if shown.stale or shown not in current:
        return Cell(shown, by_kind)
    dissent = tuple(sorted((item for item in current if item.kind != shown.kind),
                           key=_rank, reverse=True))
    return Cell(shown, by_kind, dissent, len(current) if dissent else 0)


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
