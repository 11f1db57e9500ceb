"""Policy constants of the reporter: required checks, stage order, staleness and size limits."""

# A result made with a JAX older than this (major, minor) is marked stale.
MIN_JAX = (0, 6)

# The dtype whose checks decide a ✅ cell (the dtype people deploy).
CELL_DTYPE = "bfloat16"
DTYPES = ("float32", "bfloat16")

# Checks every model needs for ✅; multimodal models also need "multimodal", and real weights
# the checks of their evidence kind (matrix/evidence.py: "realtext").
REQUIRED_CHECKS = ("load", "logits", "generate", "batch", "memory")
MULTIMODAL_CHECK = "multimodal"

# Pipeline order: the "first failing check" is the earliest one in this list.
STAGE_ORDER = ("load", "logits", "generate", "batch", "multimodal", "realtext", "bf16_fidelity",
               "memory", "speed")

# Causes a harness may record for a model whose process died (`failed` status).
FAILURE_CAUSES = ("oom", "timeout", "crash", "compile")

# Files larger than this are refused before parsing (result files are a few hundred KiB).
MAX_FILE_BYTES = 20 * 1024 * 1024

# A result dated more than this many hours in the future is rejected (clock skew allowance).
FUTURE_SLACK_HOURS = 24


def required_checks(multimodal: bool) -> tuple[str, ...]:
    """The checks a model must pass (in bfloat16) for a ✅ cell."""
    return REQUIRED_CHECKS + ((MULTIMODAL_CHECK,) if multimodal else ())
