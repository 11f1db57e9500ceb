"""Policy constants of the reporter: staleness and size limits. (What a cell needs, the check
order and the dtypes are the harness's too: contract/checks.py.)"""

# A result made with a JAX older than this (major, minor) is marked stale.
MIN_JAX = (0, 6)

# Files larger than this are refused before parsing (result files are a few hundred KiB).
MAX_FILE_BYTES = 20 * 1024 * 1024

# A result dated more than this many hours in the future is rejected (clock skew allowance).
FUTURE_SLACK_HOURS = 24
