"""Which checks a run collects: real-text checks only on real weights, the bf16 fidelity check in
bfloat16 only, vision checks on multimodal models only (never collected means never counted)."""

import pytest

from harness.checks import conftest
from harness.checks.conftest import Case


class FakeItem:
    def __init__(self, markers: set[str], case: Case):
        self.markers, self.callspec = markers, type("Spec", (), {"params": {"case": case}})

    def get_closest_marker(self, name):
        return name if name in self.markers else None


@pytest.mark.parametrize(("markers", "evidence", "dtype", "dropped"), [
    ({"real_weights_only"}, "synthetic", "bfloat16", True),
    ({"real_weights_only"}, "real", "bfloat16", False),
    ({"real_weights_only"}, "real_quantized", "float32", False),
    ({"real_weights_only", "bfloat16_only"}, "real_quantized", "float32", True),
    ({"real_weights_only", "bfloat16_only"}, "real_quantized", "bfloat16", False),
    ({"multimodal_only"}, "real", "bfloat16", True),  # gemma-3-270m has no vision tower
    (set(), "synthetic", "float32", False),
])
def test_not_applicable(markers, evidence, dtype, dropped):
    item = FakeItem(markers, Case("gemma-3-270m", dtype))
    spec = {"model": "gemma-3-270m", "evidence": evidence}
    assert bool(conftest._not_applicable(item, spec)) is dropped

