"""Validate a parsed result: schema version, JSON Schema, leaks, then the cross-field rules."""

import json
from datetime import datetime
from functools import cache

from jsonschema import Draft202012Validator

from contract.registry import Model
from contract.results import KNOWN_VERSIONS, SCHEMA_DIR

from .leaks import leak_problems
from .load import NonFinite, Result
from .problem import Problem, json_path
from .rules import rule_problems


def validate_result(result: Result, registry: tuple[Model, ...],
                    now: datetime | None = None) -> list[Problem]:
    """Every problem in one parsed result file; [] means it may enter the matrix."""
    data = result.data
    problems = leak_problems(result.name, data)
    provenance = data.get("provenance")
    version = provenance.get("schema_version") if isinstance(provenance, dict) else None
    if version is not None and not _known(version):
        problems.append(Problem(result.name, "$.provenance.schema_version", (
            f"unknown schema_version {version!r}; this reporter reads "
            f"{', '.join(map(str, KNOWN_VERSIONS))}: update the reporter (git pull) or "
            "re-run the harness of this checkout"
        )))
        return problems
    # Each file is checked against the schema of the version it declares (v1 files stay valid).
    schema_errors = schema_problems(result.name, data, version or KNOWN_VERSIONS[-1])
    problems += schema_errors
    if not schema_errors:
        # The rules read fields freely, so they run only on files the schema accepted.
        problems += rule_problems(result, registry, now)
    return problems


def schema_problems(name: str, data: dict, version: int = KNOWN_VERSIONS[-1]) -> list[Problem]:
    """JSON Schema violations, in document order, each with its JSON path."""
    errors = _validator(version).iter_errors(data)
    ordered = sorted(errors, key=lambda e: (_path_key(e.absolute_path), e.message))
    return [Problem(name, json_path(e.absolute_path), _message(e)) for e in ordered]


@cache
def _validator(version: int) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"result-v{version}.schema.json").read_text("utf-8"))
    return Draft202012Validator(schema)


def _known(version) -> bool:
    # `True == 1` in Python; a boolean is not a version number.
    return type(version) is int and version in KNOWN_VERSIONS


def _message(error) -> str:
    """jsonschema's message, reworded where it does not state the limit ("is too long"), and
    with a long value shortened so that the limit is not cut off the end of the message."""
    if isinstance(error.instance, NonFinite):
        return (
            f"{error.instance!r} is not a finite number (JSON has no NaN or Infinity); "
            "write null for a missing measurement"
        )
    if error.validator in _SIZED:
        return _size_message(error)
    if error.validator == "uniqueItems":
        return f"{_preview(error.instance)} repeats an item; the schema allows each item once"
    text = repr(error.instance)
    if len(text) > _PREVIEW and error.message.startswith(text):
        return _preview(error.instance) + error.message[len(text):]
    return error.message


# Validators whose jsonschema message ("... is too long") leaves out the limit.
_SIZED = {
    "maxItems": ("items", "allows at most"), "minItems": ("items", "requires at least"),
    "maxLength": ("characters", "allows at most"), "minLength": ("characters", "requires at least"),
    "maxProperties": ("keys", "allows at most"), "minProperties": ("keys", "requires at least"),
}
_PREVIEW = 60


def _size_message(error) -> str:
    """`$.tests: 10001 items; the schema allows at most 10000`, `'abc…' is 301 characters; …`."""
    unit, bound = _SIZED[error.validator]
    count = f"{len(error.instance)} {unit}"
    if isinstance(error.instance, str):
        key = "key " if "propertyNames" in error.schema_path else ""
        count = f"{key}{_preview(error.instance)} is {count}"
    return f"{count}; the schema {bound} {error.validator_value}"


def _preview(value) -> str:
    text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _path_key(path) -> tuple:
    # Sort indexes numerically and keys by name, without comparing an int to a str.
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in path)
