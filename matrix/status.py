"""One result -> evidence per model (runs, fails, not supported), and the status strings."""

from dataclasses import dataclass
from datetime import datetime

from contract.checks import (
    CELL_DTYPE,
    CHECK_ORDER,
    FAILED,
    FAILURE_CAUSES,
    NodeId,
    parse_nodeid,
    required_checks,
)
from contract.evidence import evidence_kind, kind_required
from contract.registry import Model
from contract.results import parse_utc

from .columns import column_for
from .escape import Trusted, md
from .evidence import marks
from .fields import major_minor
from .load import Result
from .policy import MIN_JAX

RUNS, FAILS, NOT_SUPPORTED = "runs", "fails", "not_supported"
_STATUS = {
    RUNS: "✅ Runs",
    FAILS: "❌ Fails ({})",
    NOT_SUPPORTED: "⛔️ Not supported ({})",
}
NEEDS_CHECK = "❔ Needs check"
STALE_MARK = "⏳"


@dataclass(frozen=True)
class Evidence:
    """What one result says about one (model, column) cell."""

    model: str
    column: str
    kind: str  # RUNS, FAILS or NOT_SUPPORTED
    detail: str  # the failing stage, or the not-supported reason; "" for RUNS
    time: datetime
    weights: str | None  # the evidence kind (contract/evidence.py); None: nothing was loaded
    stale: tuple[str, ...]  # why the result may no longer hold; () when current
    result: Result


def evidence_from(result: Result, registry: tuple[Model, ...], code_hash: str) -> list[Evidence]:
    """Evidence for every registry model this result says something about, in registry order."""
    provenance = result.data["provenance"]
    column = column_for(provenance["backend"], provenance["device_kind"],
                        provenance["device_count"])
    time, stale = parse_utc(provenance["utc_time"]), stale_reasons(provenance, code_hash)
    tests = tests_by_model(result.data["tests"])
    found = []
    for model in registry:
        entry = provenance["models"].get(model.id)
        weights = evidence_kind(entry) if entry is not None else None
        extra = kind_required(weights, provenance["schema_version"]) if weights else ()
        verdict = model_verdict(model, entry, tests.get(model.id, []), extra)
        if verdict is None:
            continue
        kind, detail = verdict
        weights = None if kind == NOT_SUPPORTED else weights
        found.append(Evidence(model.id, column, kind, detail, time, weights, stale, result))
    return found


def model_verdict(model: Model, entry: dict | None, tests: list,
                  extra_required: tuple[str, ...] = ()) -> tuple[str, str] | None:
    """(kind, detail) per the cell rules of docs/result-format.md; None when it says nothing.
    `extra_required`: checks the weights' evidence kind adds (real-text checks on real ones)."""
    if entry is not None and entry["status"] == "not_supported":
        return NOT_SUPPORTED, entry["reason"]
    stage = first_failing_check(tests)
    if stage is not None:
        return FAILS, stage
    if entry is not None and entry["status"] == "failed":
        # The process died before a test could record a failure: the cause is the stage.
        return FAILS, next(c for c in FAILURE_CAUSES if entry["reason"].startswith(c))
    passed = {node.check for node, test in tests
              if test["outcome"] == "passed" and node.dtype == CELL_DTYPE}
    if set(required_checks(model.multimodal) + extra_required) <= passed:
        return RUNS, ""
    # All skipped, partial or empty: this result neither proves nor disproves the cell.
    return None


def first_failing_check(tests: list) -> str | None:
    """The earliest failed or errored check in pipeline order (any dtype), or None."""
    failing = {node.check for node, test in tests if test["outcome"] in FAILED}
    if not failing:
        return None
    order = {check: index for index, check in enumerate(CHECK_ORDER)}
    return min(failing, key=lambda check: (order.get(check, len(order)), check))


def stale_reasons(provenance: dict, code_hash: str) -> tuple[str, ...]:
    """Why a result may not describe the current code: other gemma3/ sources, or an old JAX."""
    reasons = []
    if provenance["project"]["code_sha256"] != code_hash:
        reasons.append("ran on different gemma3/ code")
    jax = provenance["versions"]["jax"]
    if major_minor(jax) < MIN_JAX:
        reasons.append(f"jax {jax} older than {MIN_JAX[0]}.{MIN_JAX[1]}")
    return tuple(reasons)


def tests_by_model(tests: list) -> dict[str, list[tuple[NodeId, dict]]]:
    """(parsed node id, test) pairs grouped by model id (valid files only)."""
    grouped: dict[str, list] = {}
    for test in tests:
        node = parse_nodeid(test["nodeid"])
        assert node is not None  # valid files only: validation refused node ids that do not parse
        grouped.setdefault(node.model, []).append((node, test))
    return grouped


def status_text(item: Evidence) -> str:
    """The status string alone (detail escaped): what two pieces of evidence agree on or not."""
    return _STATUS[item.kind].format(md(item.detail))


def cell_text(item: Evidence | None, weights: tuple[str, ...] | None = None,
              dissent: tuple[Evidence, ...] = (), attempts: int = 0) -> Trusted:
    """The matrix cell: the status string, how many of the current attempts disagree with it
    (`(1 of 2 ❌)`), the marks of the evidence kinds behind it (default: this evidence's own),
    then the stale mark."""
    if item is None:
        return Trusted(NEEDS_CHECK)
    if weights is None:
        weights = (item.weights,) if item.weights else ()
    against = ""
    if dissent:
        against = f"({len(dissent)} of {attempts} {_STATUS[dissent[0].kind].split()[0]})"
    parts = [status_text(item), against, marks(weights), STALE_MARK if item.stale else ""]
    return Trusted(" ".join(part for part in parts if part))
