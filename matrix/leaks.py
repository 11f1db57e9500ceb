"""Find private data in a result file: access tokens anywhere, home paths in `root`/`command`."""

import re

from .problem import Problem, json_path

_TOKEN = re.compile(r"(?:hf_|gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}")
_HOME = re.compile(r"/home/|/Users/|/root(?:/|$|\s)|[A-Za-z]:\\Users\\")
# Where the harness writes paths; it must have replaced the home directory by `~` there.
_PATH_FIELDS = (("root",), ("provenance", "command"))


def leak_problems(name: str, data) -> list[Problem]:
    """Problems for every token-like string (keys too) and every home path in the path fields."""
    problems = [
        Problem(name, json_path(path), _token_message(found.group()))
        for path, text in _strings(data) if (found := _TOKEN.search(text))
    ]
    for field in _PATH_FIELDS:
        value = _get(data, field)
        if isinstance(value, str) and _HOME.search(value):
            problems.append(Problem(name, json_path(field), (
                "contains a home directory path; the harness writes `~` (or `.` for root) "
                "instead: re-run it or replace the home directory by `~`"
            )))
    return problems


def _token_message(found: str) -> str:
    # Show only the start: the message itself must not republish the secret.
    return (
        f"contains what looks like an access token ({found[:6]}…); remove it from the file "
        "and revoke the token"
    )


def _strings(data):
    """(path, string) for every string value and key, iteratively (files can nest deeply)."""
    stack = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield path, key
                stack.append((path + (key,), item))
        elif isinstance(value, list):
            stack.extend((path + (index,), item) for index, item in enumerate(value))


def _get(data, keys):
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
