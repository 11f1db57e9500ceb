"""Cross-field rules a JSON Schema cannot express; they run on schema-valid files only."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import PurePath

from contract.checks import DTYPES, OUTCOMES, RAN, parse_nodeid
from contract.refusal import GIB, ROUNDING_GIB, parse_memory_reason
from contract.registry import Model
from contract.results import emulated_devices, file_name, parse_utc

from .columns import column_for
from .load import Result
from .policy import FUTURE_SLACK_HOURS
from .problem import Problem, json_path
from .verdicts import verdict_problems


def rule_problems(result: Result, registry: tuple[Model, ...],
                  now: datetime | None = None) -> list[Problem]:
    """Problems with the device fingerprint, time, file name, model ids, tests and summary."""
    data, provenance = result.data, result.data["provenance"]
    found = _fingerprint(provenance) + _emulated(provenance) + _time(provenance, now)
    if not found:
        found += _file_name(result.name, provenance)
    ids = {model.id for model in registry}
    found += _model_entries(provenance, ids)
    found += _quantized_sources(provenance)
    found += _tests(data["tests"], provenance["models"], ids)
    found += verdict_problems(data["tests"], provenance["backend"], provenance["schema_version"])
    found += _summary(data["summary"], data["tests"])
    return [Problem(result.name, path, message) for path, message in found]


def _fingerprint(provenance: dict) -> list:
    try:
        column_for(provenance["backend"], provenance["device_kind"], provenance["device_count"])
    except ValueError as exc:
        return [("$.provenance.device_kind", str(exc))]
    return []


def _emulated(provenance: dict) -> list:
    """Emulated devices (one CPU split by XLA's --xla_force_host_platform_device_count) prove
    the sharded path runs, not what a machine does: their speed and memory are the host's,
    divided. Refused, so such a file can neither fill a column nor replace a real result;
    files written before the field are judged by their device count."""
    backend, count = provenance["backend"], provenance["device_count"]
    recorded = provenance.get("emulated_devices")
    if not recorded and not emulated_devices(backend, count):
        return []
    message = (f"the run's {count} {backend} devices were emulated (one host split by "
               "XLA_FLAGS=--xla_force_host_platform_device_count); such a result tests the "
               "sharded path, not a machine: keep it out of results/ (python -m harness "
               "--results <another folder>)")
    return [("$.provenance.emulated_devices" if recorded else "$.provenance.device_count",
             message)]


def _time(provenance: dict, now: datetime | None) -> list:
    try:
        when = parse_utc(provenance["utc_time"])
    except ValueError as exc:
        return [("$.provenance.utc_time", f"is not a real UTC time: {exc}")]
    now = now or datetime.now(UTC)
    if when > now + timedelta(hours=FUTURE_SLACK_HOURS):
        # A future date would win every "newer beats older" comparison for years.
        message = (f"{provenance['utc_time']} is in the future; fix the clock of the machine "
                   "that ran the harness and re-run")
        return [("$.provenance.utc_time", message)]
    return []


def _file_name(name: str, provenance: dict) -> list:
    expected = file_name(provenance)
    actual = PurePath(name).name
    if actual == expected:
        return []
    message = (f"{actual!r} does not match its provenance (time, backend, device, count); "
               f"expected {expected!r}: rename the file")
    return [("file name", message)]


def _model_entries(provenance: dict, ids: set[str]) -> list:
    found = [
        (json_path(("provenance", "models", key)),
         f"model id {key!r} is not in contract/models.json; use a registry id")
        for key in provenance["models"] if key not in ids
    ]
    for key, entry in provenance["models"].items():
        if entry["status"] == "not_supported":
            found += [(json_path(("provenance", "models", key, field)), message)
                      for field, message in _memory_refusal(entry)]
    return found


def _memory_refusal(entry: dict) -> list:
    """A not_supported model carries the planner's figures, and they agree with each other:
    it needed more than there was, and the reason's rounded figures are the recorded bytes'."""
    refusal = parse_memory_reason(entry["reason"])
    if refusal is None:
        message = (f"{entry['reason'][:80]!r} gives no memory figures; a not_supported reason "
                   "is the planner's 'needs X GiB > has Y GiB'")
        return [("reason", message)]
    null = ("is null; a not_supported model records the bytes it needed and had (the figures "
            "of its reason)")
    missing = [(key, null) for key in ("predicted_bytes", "available_bytes") if entry[key] is None]
    if missing:
        return missing
    needs, has = refusal.needs_gib, refusal.has_gib
    predicted, available = entry["predicted_bytes"], entry["available_bytes"]
    if predicted <= available or needs <= has:
        message = (f"says needs {needs:g} GiB > has {has:g} GiB with predicted_bytes {predicted} "
                   f"and available_bytes {available}: that fits, so it is not a memory refusal")
        return [("reason", message)]
    found = []
    if needs > predicted / GIB + ROUNDING_GIB:  # the reason's need is part of the prediction
        message = (f"says needs {needs:g} GiB, more than predicted_bytes {predicted} "
                   f"({predicted / GIB:.2f} GiB)")
        found.append(("reason", message))
    if has < available / GIB - ROUNDING_GIB:  # available_bytes is the least of all devices
        message = (f"says has {has:g} GiB, less than available_bytes {available} "
                   f"({available / GIB:.2f} GiB)")
        found.append(("reason", message))
    return found


def _quantized_sources(provenance: dict) -> list:
    """A `gguf:<sha256>` checkpoint names the same file its quantization block describes."""
    found = []
    for key, entry in provenance["models"].items():
        source, _, digest = entry["checkpoint"].partition(":")
        recorded = (entry.get("quantization") or {}).get("file_sha256")
        if source == "gguf" and digest != recorded:
            message = (f"{recorded!r} differs from the checkpoint's sha256 {digest!r}; both "
                       "name the one GGUF file the run loaded: re-run the harness")
            path = json_path(("provenance", "models", key, "quantization", "file_sha256"))
            found.append((path, message))
    return found


def _tests(tests: list, entries: dict, ids: set[str]) -> list:
    found, seen = [], set()
    for index, test in enumerate(tests):
        if test["nodeid"] in seen:
            found.append((json_path(("tests", index, "nodeid")),
                          f"{test['nodeid']!r} appears twice; each test is recorded once"))
        seen.add(test["nodeid"])
        found += _test_problems(index, test, entries, ids)
    return found


def _test_problems(index: int, test: dict, entries: dict, ids: set[str]) -> list:
    path = json_path(("tests", index, "nodeid"))
    node = parse_nodeid(test["nodeid"])
    if node is None:
        message = (f"{test['nodeid']!r} is not a harness check id; expected "
                   "'harness/checks/test_<check>.py::test_<check>[<model id>-<dtype>]'")
        return [(path, message)]
    found = []
    if node.model not in ids:
        found.append((path, f"model id {node.model!r} is not in contract/models.json"))
    if node.dtype not in DTYPES:
        found.append((path, f"dtype {node.dtype!r} is not one of {', '.join(DTYPES)}"))
    found += _metadata_problems(index, test.get("metadata"), node)
    entry = entries.get(node.model)
    if node.model in ids and entry is None:
        found.append((path, f"model {node.model!r} has tests but no provenance.models entry"))
    elif entry is not None:
        found += [(path, message) for message in _entry_messages(entry, node, test["outcome"])]
    return found


def _metadata_problems(index: int, metadata: dict | None, node) -> list:
    if metadata is None:
        return []
    return [
        (json_path(("tests", index, "metadata", key)),
         f"{metadata[key]!r} disagrees with the node id, which says {getattr(node, key)!r}")
        for key in ("model", "dtype", "check") if metadata[key] != getattr(node, key)
    ]


def _entry_messages(entry: dict, node, outcome: str) -> list[str]:
    messages = []
    if node.dtype in DTYPES and node.dtype not in entry["dtypes"]:
        messages.append(f"dtype {node.dtype!r} is missing from provenance.models"
                        f"[{node.model!r}].dtypes")
    if entry["status"] == "not_supported" and outcome in RAN:
        messages.append(f"model {node.model!r} is recorded not_supported, yet this test ran "
                        f"(outcome {outcome!r})")
    return messages


def _summary(summary: dict, tests: list) -> list:
    counts = Counter(test["outcome"] for test in tests)
    found = [
        (json_path(("summary", outcome)),
         f"says {summary.get(outcome, 0)} but tests[] has {counts[outcome]} {outcome!r}")
        for outcome in OUTCOMES if summary.get(outcome, 0) != counts[outcome]
    ]
    if summary["total"] != len(tests):
        message = f"says {summary['total']} but tests[] has {len(tests)} entries"
        found.append(("$.summary.total", message))
    return found
