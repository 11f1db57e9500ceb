"""The planner's memory refusal, as one sentence both sides agree on: the harness writes it with
`memory_reason`, the reporter reads its figures back with `parse_memory_reason`.

    needs 58.3 GiB > has 39.4 GiB            (the JAX process)
    reference needs 58.3 GiB > has 39.4 GiB  (the transformers process)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GIB = 2**30
ROUNDING_GIB = 0.05 + 1e-9  # the sentence's figures are rounded to one decimal
_REASON = re.compile(r"(?P<who>reference )?needs (?P<needs>[0-9]+(?:\.[0-9]+)?) GiB > has "
                     r"(?P<has>[0-9]+(?:\.[0-9]+)?) GiB")


@dataclass(frozen=True)
class Refusal:
    needs_gib: float
    has_gib: float
    reference: bool  # the reference process, not the JAX one, is what cannot fit


def gib(n: int) -> str:
    """Bytes as the sentence writes them: `58.3 GiB`."""
    return f"{n / GIB:.1f} GiB"


def memory_reason(needs: int, has: int, *, reference: bool = False) -> str:
    return f"{'reference ' if reference else ''}needs {gib(needs)} > has {gib(has)}"


def parse_memory_reason(text: str) -> Refusal | None:
    """The figures of the first refusal sentence at the start of `text`, or None."""
    match = _REASON.match(text)
    if match is None:
        return None
    return Refusal(float(match["needs"]), float(match["has"]), bool(match["who"]))
