"""The harness's default thread count: the cores idle now, sampled from /proc/stat, so the
model process that has just ended (still in the load average) does not count as busy."""

import os
import threading
import time

import pytest

from harness.system import threads


def write_stat(path, idle, total_busy):
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    path.write_text(f"cpu  {total_busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")


def test_busy_cores_is_the_share_of_non_idle_time(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    monkeypatch.setattr(threads, "_PROC_STAT", str(stat))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    write_stat(stat, idle=1000, total_busy=1000)

    def advance():  # during the sample: 30 jiffies busy, 10 idle -> 3/4 of 2 cores busy
        time.sleep(0.05)
        write_stat(stat, idle=1010, total_busy=1030)

    writer = threading.Thread(target=advance)
    writer.start()
    busy = threads.busy_cores(0.2)
    writer.join()
    assert busy == pytest.approx(1.5)
    assert threads.auto_threads(0.0) == 2  # nothing changed in a 0 s sample: idle


def test_the_load_average_is_the_fallback_without_proc_stat(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "_PROC_STAT", str(tmp_path / "missing"))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert threads.auto_threads(0.0) == 1  # 4 cores - 3 busy
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert threads.auto_threads(0.0) == 1  # never fewer than one
