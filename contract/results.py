"""The result file's schema version and name."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 3  # what the harness writes: contract/schema/result-v3.schema.json
KNOWN_VERSIONS = (1, 2, 3)  # what the reporter reads
SCHEMA_DIR = Path(__file__).with_name("schema")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


def parse_utc(text: str) -> datetime:
    """`2026-11-27T23:15:00Z` (optional fraction) as an aware datetime; ValueError if no date."""
    if not text.endswith("Z"):
        raise ValueError(f"{text!r} does not end in Z (UTC)")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def emulated_devices(backend: str, device_count: int) -> bool:
    """Several CPU devices in one run are always one host split by XLA
    (XLA_FLAGS=--xla_force_host_platform_device_count; the harness runs a single process), so
    each "device" reports the whole host's memory and shares its cores: provenance's
    `emulated_devices`, and what the reporter assumes of files written before that field."""
    return backend == "cpu" and device_count > 1


def file_name(provenance: dict) -> str:
    """`<yyyymmddThhmmssZ>-<backend>-<device slug>-<count>x.json` for a provenance block."""
    stamp = parse_utc(provenance["utc_time"]).strftime("%Y%m%dT%H%M%SZ")
    slug = _SLUG_JUNK.sub("-", provenance["device_kind"].lower()).strip("-")[:40].strip("-")
    backend, count = provenance["backend"], provenance["device_count"]
    return f"{stamp}-{backend}-{slug or 'device'}-{int(count)}x.json"
