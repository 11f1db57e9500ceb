"""Verdicts re-derived from their numbers: every check's outcome is judged again from its
recorded measurements with the project's table of bounds (contract/bounds.py), so a file whose
verdicts contradict its numbers, or whose numbers were judged by a looser bound, is refused.

- v3 files record the bounds each check applied. Each must be one of the table's bounds for
  that check, dtype and backend, and no looser; every bound of the table must be there; a
  `passed` outcome must hold under the recorded bounds.
- v1 and v2 files predate recorded bounds. They are re-judged against today's table, with the
  bounds whose measurement the file has: a `passed` outcome that today's table fails is
  refused. (Refusing them outright would throw away evidence whose numbers still hold; keeping
  their old verdicts would let an older, looser threshold stand.)
- A `failed` outcome is not re-derived: a check may fail for a reason its numbers do not show
  (an exception), and a failure never makes a cell look better than it is.
"""

from contract.bounds import Bound, check_bounds, judge
from contract.checks import parse_nodeid

from .problem import json_path

RECORDED_SINCE = 3


def verdict_problems(tests: list, backend: str, schema_version: int) -> list:
    """(json path, message) for each check whose verdict or bounds do not add up."""
    found = []
    for index, test in enumerate(tests):
        node = parse_nodeid(test["nodeid"])
        if node is None or test["outcome"] not in ("passed", "failed"):
            continue
        try:
            table = check_bounds(node.check, node.dtype, backend)
        except KeyError:
            if schema_version >= RECORDED_SINCE:
                message = (f"check {node.check!r} has no bounds in the project's table "
                           "(contract/bounds.py): not a check this reporter can judge")
                found.append((json_path(("tests", index, "nodeid")), message))
            continue
        found += _test_problems(index, test, table, schema_version)
    return found


def _test_problems(index: int, test: dict, table: tuple[Bound, ...], version: int) -> list:
    metadata = test.get("metadata") or {}
    measurements = metadata.get("measurements") or {}
    nodeid = test["nodeid"]
    if version < RECORDED_SINCE:
        applied = tuple(b for b in table if b.measurement is None or b.measurement in measurements)
        problems: list = []
    else:
        recorded = [Bound.from_record(r) for r in metadata.get("bounds", [])]
        problems = _bound_problems(index, nodeid, recorded, table)
        applied = tuple(recorded)
    if test["outcome"] == "passed":
        broken = judge(applied, measurements)
        if version >= RECORDED_SINCE and not metadata:
            broken = ["no measurements or bounds were recorded"]
        problems += [(json_path(("tests", index, "outcome")),
                      f"{nodeid}: recorded 'passed' but {line}") for line in broken]
    return problems


def _bound_problems(index: int, nodeid: str, recorded: list[Bound],
                    table: tuple[Bound, ...]) -> list:
    path = json_path(("tests", index, "metadata", "bounds"))
    by_name = {b.name: b for b in table}
    found = []
    names = [b.name for b in recorded]
    for bound in recorded:
        message = _mismatch(bound, by_name.get(bound.name), by_name)
        if message is not None:
            found.append((path, f"{nodeid}: {message}"))
    found += [(path, f"{nodeid}: bound {name!r} of the table was not recorded")
              for name in by_name if name not in names]
    found += [(path, f"{nodeid}: bound {name!r} is recorded twice")
              for name in sorted({n for n in names if names.count(n) > 1})]
    return found


def _mismatch(bound: Bound, expected: Bound | None, table: dict[str, Bound]) -> str | None:
    """Why a recorded bound is not the table's (or is looser), or None."""
    if expected is None:
        return (f"bound {bound.name!r} is not one of the table's for this check "
                f"({', '.join(table)})")
    if (bound.measurement, bound.limit) != (expected.measurement, expected.limit):
        return (f"bound {bound.name!r} limits {bound.measurement!r} ({bound.limit}); the "
                f"table's limits {expected.measurement!r} ({expected.limit})")
    if bound.looser_than(expected):
        return (f"bound {bound.name} = {bound.value:g} on {bound.measurement or 'the check'} is "
                f"looser than the project's {expected.value:g} ({expected.describe()})")
    return None
