"""One problem found in one result file: file, JSON path, message."""

import json
from dataclasses import dataclass

_MAX_MESSAGE = 300


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        # Messages echo untrusted values: cap their length so a huge value cannot flood the log.
        message = self.message
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 1] + "…"
        return f"{self.file}: {self.path}: {message}"


def json_path(parts) -> str:
    """`$.a.b[3]['odd-key']` for a sequence of keys and indexes."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier() and part.isascii():
            out += f".{part}"
        else:
            # ensure_ascii keeps control characters from strangers' keys out of the terminal.
            out += "[" + json.dumps(part, ensure_ascii=True) + "]"
    return out
