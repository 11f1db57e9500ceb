"""The checks the harness runs, how their test ids read, and what a cell needs.

Test ids are pytest's: `harness/checks/test_<check>.py::test_<check>[<model id>-<dtype>]`;
the matrix joins on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The order the checks run in within a (model, dtype) case, and the pipeline order in which the
# matrix names "the first failing check": memory last, so its peak covers all the others.
CHECK_ORDER = ("load", "logits", "generate", "batch", "multimodal", "realtext", "bf16_fidelity",
               "speed", "memory")
# Checks every model needs for ✅; multimodal models also need MULTIMODAL_CHECK, and real
# weights the checks of their evidence kind (contract/evidence.py).
REQUIRED_CHECKS = ("load", "logits", "generate", "batch", "memory")
MULTIMODAL_CHECK = "multimodal"

DTYPES = ("float32", "bfloat16")
DTYPE_ORDER = ("bfloat16", "float32")  # run order: smaller first, so a lifetime peak is per dtype
CELL_DTYPE = "bfloat16"  # the dtype whose checks decide a ✅ cell (the dtype people deploy)

OUTCOMES = ("passed", "failed", "skipped", "error", "xfailed", "xpassed")
RAN = frozenset({"passed", "failed", "error", "xpassed"})
FAILED = frozenset({"failed", "error"})
# Causes the harness records for a model whose process died (its `failed` status).
FAILURE_CAUSES = ("oom", "timeout", "crash", "compile")

CHECKS_DIR = "harness/checks"
# The dtype is the last `-` field in the brackets; model ids contain `-` themselves.
_NODEID = re.compile(
    r"harness/checks/test_[a-z0-9_]+\.py::test_(?P<check>[a-z][a-z0-9_]*)"
    r"\[(?P<model>[A-Za-z0-9._-]+)-(?P<dtype>[A-Za-z0-9]+)\]"
)


@dataclass(frozen=True)
class NodeId:
    check: str
    model: str
    dtype: str


def parse_nodeid(nodeid: str) -> NodeId | None:
    """The (check, model, dtype) a node id names, or None when it is not a harness check id."""
    match = _NODEID.fullmatch(nodeid)
    if match is None:
        return None
    return NodeId(match["check"], match["model"], match["dtype"])


def case_id(model: str, dtype: str) -> str:
    """The parametrization id of a check: `<model id>-<dtype>`."""
    return f"{model}-{dtype}"


def required_checks(multimodal: bool) -> tuple[str, ...]:
    """The checks a model must pass (in CELL_DTYPE) for a ✅ cell."""
    return REQUIRED_CHECKS + ((MULTIMODAL_CHECK,) if multimodal else ())
