"""Device fingerprint -> hardware column mapping, and column order."""

import pytest

from matrix.columns import FIXED_COLUMNS, column_for, ordered_columns


@pytest.mark.parametrize(("backend", "kind", "count", "column"), [
    ("cpu", "cpu", 1, "CPU"),
    ("cpu", "cpu", 64, "CPU"),
    ("gpu", "NVIDIA H100 80GB HBM3", 1, "GPU H100 (1x)"),
    ("gpu", "NVIDIA H100 PCIe", 8, "GPU H100 (8x)"),
    ("gpu", "NVIDIA A100-SXM4-40GB", 1, "GPU A100 (1x)"),
    ("gpu", "NVIDIA A100-SXM4-80GB", 8, "GPU A100 (8x)"),
    ("gpu", "NVIDIA H200", 1, "GPU H200 (1x)"),
    ("gpu", "NVIDIA GeForce RTX 4090", 1, "GPU RTX 4090 (1x)"),
    ("gpu", "NVIDIA GeForce RTX 3090 Ti", 2, "GPU RTX 3090 Ti (2x)"),
    ("gpu", "NVIDIA RTX A6000", 1, "GPU RTX A6000 (1x)"),
    ("gpu", "Tesla V100-SXM2-16GB", 4, "GPU V100 (4x)"),
    ("gpu", "NVIDIA L4", 1, "GPU L4 (1x)"),
    ("gpu", "AMD Instinct MI300X", 8, "GPU MI300X (8x)"),
    ("gpu", "NVIDIA H100 | <script>", 1, "GPU H100 (1x)"),
    ("tpu", "TPU v2", 8, "TPU v2 (8x)"),
    ("tpu", "TPU v5 lite", 1, "TPU v5e (1x)"),
    ("tpu", "TPU v5", 4, "TPU v5p (4x)"),
    ("tpu", "TPU v5p", 4, "TPU v5p (4x)"),
    ("tpu", "TPU v4", 4, "TPU v4 (4x)"),
    ("tpu", "TPU v6 lite", 8, "TPU v6e (8x)"),
    ("tpu", "TPU v4 lite", 1, "TPU v4i (1x)"),
    ("tpu", "TPU7x", 4, "TPU v7x (4x)"),
])
def test_column_for(backend, kind, count, column):
    assert column_for(backend, kind, count) == column


@pytest.mark.parametrize(("backend", "kind", "reason"), [
    ("cpu", "NVIDIA H100", "expected device_kind 'cpu'"),
    ("tpu", "NVIDIA A100-SXM4-40GB", "expected a TPU device_kind"),
    ("gpu", "TPU v5 lite", "not a GPU device_kind"),
    ("gpu", "NVIDIA", "no recognisable GPU model name"),
    ("gpu", "NVIDIA [link](http://x)", "no recognisable GPU model name"),
    ("gpu", "NVIDIA `x`", "no recognisable GPU model name"),
    ("metal", "Apple M3", "is not one of"),
])
def test_column_for_rejects_inconsistent_fingerprints(backend, kind, reason):
    with pytest.raises(ValueError, match=reason):
        column_for(backend, kind, 1)


def test_fixed_columns_first_then_sorted_extras():
    seen = {"GPU RTX 4090 (1x)", "TPU v4 (16x)", "CPU", "GPU H200 (1x)", "TPU v4 (4x)",
            "GPU H200 (8x)"}
    assert ordered_columns(seen) == list(FIXED_COLUMNS) + [
        "GPU H200 (1x)", "GPU H200 (8x)", "GPU RTX 4090 (1x)", "TPU v4 (4x)", "TPU v4 (16x)"]


def test_fixed_columns_always_shown():
    assert ordered_columns(set()) == [
        "CPU", "GPU A100 (1x)", "GPU H100 (1x)", "GPU A100 (8x)", "GPU H100 (8x)",
        "TPU v2 (8x)", "TPU v5e (1x)"]
