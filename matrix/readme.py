"""Put the rendered block between the README markers, and diff the README against it."""

import difflib

BEGIN = "<!-- matrix:begin -->"
END = "<!-- matrix:end -->"


class MarkerError(ValueError):
    """The README does not have exactly one begin marker followed by one end marker."""


def splice(readme: str, block: str, where: str = "README.md") -> str:
    """`readme` with everything between the markers replaced by `block`; the rest untouched."""
    counts = (readme.count(BEGIN), readme.count(END))
    if counts != (1, 1) or readme.index(BEGIN) > readme.index(END):
        raise MarkerError(
            f"{where} has {counts[0]} {BEGIN!r} and {counts[1]} {END!r} markers; expected one "
            "of each, begin first, each on its own line: add them where the matrix goes, "
            "then run `python -m matrix render`"
        )
    head = readme[: readme.index(BEGIN) + len(BEGIN)]
    tail = readme[readme.index(END):]
    return f"{head}\n{block.rstrip()}\n{tail}"


def unified_diff(current: str, expected: str, where: str) -> str:
    """A unified diff from the README as it is to the README as the results render it."""
    lines = difflib.unified_diff(
        current.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=f"{where} (as committed)",
        tofile=f"{where} (as rendered from results/)",
    )
    return "".join(lines)
