"""The measured peak on accelerators is the highest device's, as the planner predicts per
device (faked devices: none is present here)."""

import jax

from harness.memory import measure


class Device:
    def __init__(self, peak):
        self._peak = peak

    def memory_stats(self):
        return {} if self._peak is None else {"peak_bytes_in_use": self._peak}


def test_the_fullest_device_is_the_peak(monkeypatch):
    monkeypatch.setattr(jax, "local_devices", lambda: [Device(5), Device(9), Device(7)])
    assert measure.measured_peak("gpu") == (9, "device peak_bytes_in_use (the highest device)")


def test_devices_that_report_nothing_give_no_peak(monkeypatch):
    monkeypatch.setattr(jax, "local_devices", lambda: [Device(None)] * 2)
    assert measure.measured_peak("tpu")[0] is None
