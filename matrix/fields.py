"""Parsers for fields of a result file: test node ids, UTC times, JAX versions, file names."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# The dtype is the last `-` field in the brackets; model ids contain `-` themselves.
_NODEID = re.compile(
    r"harness/checks/test_[a-z0-9_]+\.py::test_(?P<check>[a-z][a-z0-9_]*)"
    r"\[(?P<model>[A-Za-z0-9._-]+)-(?P<dtype>[A-Za-z0-9]+)\]"
)
_MAJOR_MINOR = re.compile(r"(?P<major>[0-9]+)\.(?P<minor>[0-9]+)")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


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


def parse_utc(text: str) -> datetime:
    """`2026-11-27T23:15:00Z` (optional fraction) as an aware datetime; ValueError if no date."""
    if not text.endswith("Z"):
        raise ValueError(f"{text!r} does not end in Z (UTC)")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def major_minor(version: str) -> tuple[int, int]:
    """`0.6.2` -> (0, 6); ValueError when the string does not start with major.minor."""
    match = _MAJOR_MINOR.match(version)
    if match is None:
        raise ValueError(f"version {version!r} does not start with <major>.<minor>")
    return int(match["major"]), int(match["minor"])


def expected_file_name(provenance: dict) -> str:
    """`<yyyymmddThhmmssZ>-<backend>-<device slug>-<count>x.json` for a provenance block."""
    stamp = parse_utc(provenance["utc_time"]).strftime("%Y%m%dT%H%M%SZ")
    slug = _SLUG_JUNK.sub("-", provenance["device_kind"].lower()).strip("-")[:40].strip("-")
    backend, count = provenance["backend"], provenance["device_count"]
    return f"{stamp}-{backend}-{slug or 'device'}-{int(count)}x.json"
