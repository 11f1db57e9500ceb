"""Map a recorded device (backend, device_kind, count) to a hardware column of the matrix."""

import re

# Always shown, in this order; other columns follow when a valid result brings them.
FIXED_COLUMNS = (
    "CPU",
    "GPU A100 (1x)",
    "GPU H100 (1x)",
    "GPU A100 (8x)",
    "GPU H100 (8x)",
    "TPU v2 (8x)",
    "TPU v5e (1x)",
)

# Words that name a vendor or brand, not the card: dropped from the front of a GPU device_kind.
_BRAND_WORDS = {"nvidia", "amd", "geforce", "tesla", "quadro", "instinct", "radeon"}
# Series words whose model number follows as a separate word ("RTX 4090", "RTX A6000").
_SERIES_WORDS = {"rtx", "gtx", "titan", "rx", "pro"}
# Words after a series model number that name a different card ("RTX 3090 Ti").
_SUFFIX_WORDS = {"ti", "super", "xt", "xtx", "ada"}
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+]*(?: [A-Za-z0-9.+]+)*")
_TPU_KIND = re.compile(r"TPU ?v?(?P<major>[0-9]+)(?P<letter>[a-z]?)(?P<lite> lite)?")
# JAX reports the v5p as plain "TPU v5"; "lite" chips are the "e" line (v4 lite is the v4i).
_TPU_NAMES = {("5", ""): "v5p", ("4", " lite"): "v4i"}
_COLUMN = re.compile(r"(?P<family>GPU|TPU) (?P<name>.+) \((?P<count>[0-9]+)x\)")


def column_for(backend: str, device_kind: str, device_count: int) -> str:
    """The column label; ValueError with the reason when the fingerprint is inconsistent."""
    if backend == "cpu":
        if device_kind != "cpu":
            raise ValueError(_disagree(backend, device_kind, "expected device_kind 'cpu'"))
        return "CPU"
    if backend == "gpu":
        return f"GPU {gpu_short_name(device_kind)} ({int(device_count)}x)"
    if backend == "tpu":
        return f"TPU {tpu_version(device_kind)} ({int(device_count)}x)"
    raise ValueError(f"backend {backend!r} is not one of 'cpu', 'gpu', 'tpu'")


def gpu_short_name(device_kind: str) -> str:
    """`NVIDIA H100 80GB HBM3` -> `H100`, `NVIDIA GeForce RTX 4090` -> `RTX 4090`."""
    if device_kind.strip().lower() == "cpu" or device_kind.strip().upper().startswith("TPU"):
        raise ValueError(_disagree("gpu", device_kind, "that is not a GPU device_kind"))
    words = device_kind.split()
    while words and words[0].lower() in _BRAND_WORDS:
        words = words[1:]
    if len(words) >= 2 and words[0].lower() in _SERIES_WORDS:
        name = words[:2]
        name += _leading(words[2:], _SUFFIX_WORDS)
    else:
        # A100-SXM4-40GB: the model is the part before the first dash; memory/form factor go.
        name = [words[0].split("-")[0]] if words else []
    short = " ".join(name)
    if not _SAFE_NAME.fullmatch(short) or len(short) > 24:
        raise ValueError(
            f"device_kind {device_kind!r} gives no recognisable GPU model name; "
            "record jax.devices()[0].device_kind unchanged"
        )
    return short


def tpu_version(device_kind: str) -> str:
    """`TPU v2` -> `v2`, `TPU v5 lite` -> `v5e`, `TPU v5`/`v5p` -> `v5p`, `TPU v6 lite` -> `v6e`."""
    match = _TPU_KIND.fullmatch(device_kind)
    if match is None:
        raise ValueError(_disagree("tpu", device_kind, "expected a TPU device_kind like 'TPU v4'"))
    major, letter, lite = match["major"], match["letter"], match["lite"] or ""
    if (major, lite) in _TPU_NAMES and not letter:
        return _TPU_NAMES[(major, lite)]
    return f"v{major}{letter}{'e' if lite else ''}"


def ordered_columns(seen: set[str]) -> list[str]:
    """The fixed columns, then every other seen column sorted by family, name, device count."""
    extra = sorted(set(seen) - set(FIXED_COLUMNS), key=_sort_key)
    return list(FIXED_COLUMNS) + extra


def _sort_key(label: str) -> tuple:
    match = _COLUMN.fullmatch(label)
    if match is None:
        return (label, "", 0)
    return (match["family"], match["name"].lower(), int(match["count"]))


def _leading(words: list[str], allowed: set[str]) -> list[str]:
    out = []
    for word in words:
        if word.lower() not in allowed:
            break
        out.append(word)
    return out


def _disagree(backend: str, device_kind: str, expected: str) -> str:
    return (
        f"backend {backend!r} with device_kind {device_kind!r}: the device fingerprint "
        f"disagrees ({expected}); results must be written by the harness, not edited"
    )
