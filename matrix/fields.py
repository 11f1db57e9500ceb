"""Parsers for fields of a result file the reporter alone reads: JAX versions. (Node ids, times
and file names are the harness's too: contract/checks.py, contract/results.py.)"""

import re

_MAJOR_MINOR = re.compile(r"(?P<major>[0-9]+)\.(?P<minor>[0-9]+)")


def major_minor(version: str) -> tuple[int, int]:
    """`0.6.2` -> (0, 6); ValueError when the string does not start with major.minor."""
    match = _MAJOR_MINOR.match(version)
    if match is None:
        raise ValueError(f"version {version!r} does not start with <major>.<minor>")
    return int(match["major"]), int(match["minor"])
