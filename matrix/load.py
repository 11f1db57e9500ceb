"""Read result files: list them, parse them strictly, report what cannot be parsed."""

import json
import math
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


def list_result_files(results_dir: Path) -> list[Path]:
    """Every `*.json` file directly in `results_dir`, sorted by name; [] when the dir is absent."""
    if not results_dir.is_dir():
        return []
    return sorted(p for p in results_dir.iterdir() if p.suffix == ".json" and p.is_file())


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
    """The file's text, or an explanation of why it cannot be used."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return "", f"file is {size} bytes; result files are at most {MAX_FILE_BYTES} bytes"
        return path.read_bytes().decode("utf-8"), None
    except OSError as exc:
        return "", f"file cannot be read ({exc.strerror}); check the path"
    except UnicodeDecodeError as exc:
        return "", f"file is not UTF-8 (bad byte at offset {exc.start}); write it as UTF-8 JSON"


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
