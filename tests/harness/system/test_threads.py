"""The harness's default thread count: the cores other processes leave idle now, from their
CPU times in /proc/<pid>/stat, so neither the model process that has just ended (still in the
load average), nor the harness's own processes, nor kernel threads (page writeback after a
large checkpoint was written) count as busy."""

import os

import pytest

from harness.system import threads
from harness.system.threads import Process

OWN, CHILD, SHELL, KWORKER, OTHER = 100, 101, 1, 7, 500
TICKS = 100  # per second


def table(**ticks) -> dict[int, Process]:
    """A process table: the harness (OWN) and its model process (CHILD), a shell, a kernel
    writeback thread and another user's process, with the CPU ticks given."""
    return {SHELL: Process(0, False, ticks.get("shell", 50)),
            KWORKER: Process(2, True, ticks.get("kworker", 1000)),
            OWN: Process(SHELL, False, ticks.get("own", 300)),
            CHILD: Process(OWN, False, ticks.get("child", 900)),
            OTHER: Process(SHELL, False, ticks.get("other", 10))}


def busy(after: dict, before: dict | None = None, seconds: float = 0.5) -> float:
    return threads.busy_between(before or table(), after, OWN, seconds, TICKS)


def test_an_idle_machine_is_idle():
    assert busy(table()) == 0.0


def test_kernel_writeback_is_not_a_busy_core():
    # The writeback thread used a whole core for the whole sample: still idle for the harness.
    assert busy(table(kworker=1000 + 50)) == 0.0


def test_the_harness_and_its_model_processes_are_not_other_work():
    assert busy(table(own=300 + 20, child=900 + 50)) == 0.0


def test_another_users_process_takes_the_cores_it_uses():
    assert busy(table(other=10 + 50)) == pytest.approx(1.0)  # a whole core for 0.5 s
    assert busy(table(other=10 + 25, shell=50 + 25)) == pytest.approx(1.0)


def test_a_process_started_during_the_sample_counts_all_its_time():
    after = {**table(), 600: Process(SHELL, False, 40)}
    assert busy(after) == pytest.approx(0.8)


def test_the_thread_count_leaves_other_works_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "other_busy_cores", lambda seconds: 0.0)
    assert threads.auto_threads(0.0) == 2
    monkeypatch.setattr(threads, "other_busy_cores", lambda seconds: 1.0)
    assert threads.auto_threads(0.0) == 1
    monkeypatch.setattr(threads, "other_busy_cores", lambda seconds: 5.0)
    assert threads.auto_threads(0.0) == 1  # never fewer than one


def test_a_stat_line_is_read_from_after_the_command_name():
    line = ("4242 (tricky) name) S 17 4242 4242 0 -1 4194560 1 0 0 0 30 12 0 0 20 0 1 0 "
            "100 0 0")
    assert threads.parse_stat(line) == Process(17, False, 42)
    kthread = "7 (kworker/u8:0-writeback) I 2 0 0 0 -1 69238880 0 0 0 0 0 515 0 0"
    assert threads.parse_stat(kthread).kernel_thread


def test_this_machines_process_table_reads(tmp_path):
    found = threads.process_table()
    assert os.getpid() in found and found[os.getpid()].ppid == os.getppid()
    assert threads.own_tree(found, os.getpid()) >= {os.getpid()}


def test_the_load_average_is_the_fallback_without_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "_PROC", str(tmp_path / "missing"))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert threads.auto_threads(0.0) == 1  # 4 cores - 3 busy
