"""Read result files: list them, parse them strictly, report what cannot be parsed."""

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .policy import MAX_FILE_BYTES
from .problem import Problem


@dataclass(frozen=True)
class Result:
    """A parsed result file; `name` is how messages refer to it (the path as given)."""

    path: Path
    name: str
    data: dict


class NonFinite:
    """Stands in for NaN/Infinity, which JSON does not have, so the validator can point at it."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class ResultsDirError(OSError):
    """The --results folder is missing or is not a folder: never read as "no results"."""


def list_result_files(results_dir: Path) -> list[Path]:
    """The entries of `results_dir` to read, sorted by name: every `*.json` entry, and every
    entry that is not a regular file (read_result refuses those by name). Hidden entries (the
    harness's `.result-*.tmp` while it writes) and other regular files are not results.

    A missing folder is an error: rendering it as "no results" would wipe the matrix."""
    try:
        mode = results_dir.stat().st_mode  # the folder itself may be a link to a folder
    except OSError as exc:
        # strerror is always set on what stat raises; str(exc) only satisfies its Optional type
        reason = (exc.strerror or str(exc)).lower()
        raise ResultsDirError(f"--results {results_dir}: {reason}; pass the "
                              "folder of result files (default: results/)") from None
    if not stat.S_ISDIR(mode):
        raise ResultsDirError(f"--results {results_dir}: is a {_kind(mode)}, not a folder of "
                              "result files")
    entries = (p for p in results_dir.iterdir() if not p.name.startswith("."))
    return sorted(p for p in entries if p.suffix == ".json" or not _is_regular(p))


def read_result(path: Path, name: str) -> tuple[Result | None, list[Problem]]:
    """Parse one file; on failure return None and one problem saying what to do."""
    text, problem = _read_text(path)
    if problem is not None:
        return None, [Problem(name, "$", problem)]
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        return None, [Problem(name, "$", _decode_message(exc, text))]
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting deeper than Python's parser allows (no real result does).
        return None, [Problem(name, "$", f"not valid result JSON: {exc}")]
    if not isinstance(data, dict):
        kind = type(data).__name__
        return None, [Problem(name, "$", f"top level is a {kind}; expected a JSON object")]
    return Result(path, name, data), []


def _read_text(path: Path) -> tuple[str, str | None]:
    """The file's text, or an explanation of why it cannot be used. Only a regular file is
    opened (lstat first: opening a FIFO would hang, a device could stream forever, a symlink
    could point anywhere), and at most MAX_FILE_BYTES + 1 bytes are read before parsing."""
    try:
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            return "", (f"is a {_kind(mode)}, not a regular file; not read: result files must "
                        "be plain files (copy the file itself into results/)")
        # O_NONBLOCK: should the path be swapped for a FIFO after the lstat, open() returns.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                return "", "is not a regular file; not read"
            # The size is checked before reading, and the read stops past the cap anyway (a
            # file that grows while it is read).
            data = b"" if info.st_size > MAX_FILE_BYTES else f.read(MAX_FILE_BYTES + 1)
        if info.st_size > MAX_FILE_BYTES or len(data) > MAX_FILE_BYTES:
            size = max(info.st_size, len(data))
            return "", (f"file is {size} bytes; result files are at most {MAX_FILE_BYTES} "
                        "bytes (20 MiB), checked before parsing")
        return data.decode("utf-8"), None
    except OSError as exc:
        return "", f"file cannot be read ({exc.strerror}); check the path"
    except UnicodeDecodeError as exc:
        return "", f"file is not UTF-8 (bad byte at offset {exc.start}); write it as UTF-8 JSON"


def _is_regular(path: Path) -> bool:
    return stat.S_ISREG(path.lstat().st_mode)


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "symlink"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISSOCK, "socket"), (stat.S_ISREG, "regular file"))
    return next((name for test, name in kinds if test(mode)), "special file")


def parse_json(text: str):
    """json.loads that refuses duplicate keys and keeps NaN/Infinity/overflow as NonFinite."""
    return json.loads(
        text,
        object_pairs_hook=_no_duplicates,
        parse_constant=NonFinite,
        parse_float=_finite_float,
    )


def _finite_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            # Two values for one key: readers disagree on which wins, so refuse the file.
            raise ValueError(f"key {json.dumps(key)} appears twice in one object")
        obj[key] = value
    return obj


def _decode_message(exc: json.JSONDecodeError, text: str) -> str:
    detail = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    ending = text.rstrip()
    # A writer that died half way leaves a file that stops before its closing brace.
    if exc.pos >= len(ending) or (not ending.endswith("}") and exc.msg != "Extra data"):
        return (
            f"JSON is cut off: {detail}; the file looks truncated: re-run the harness or "
            "restore the whole file"
        )
    return f"not valid JSON: {detail}; fix the file or re-run the harness"
