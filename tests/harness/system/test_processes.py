"""Model processes: a kill, a timeout and a crash each become the cause the result schema
wants (oom, timeout, crash, compile)."""

import os
import sys

from harness.system.processes import Finished, cause, run_child

PY = sys.executable


def run(code: str, timeout=30):
    return run_child([PY, "-c", code], env=dict(os.environ), cwd=".", timeout=timeout)


def test_a_sigkill_is_recorded_as_oom():
    done = run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert cause(done, "loading", 30) == f"oom: process killed (exit {done.returncode}) while loading"


def test_a_timeout_kills_the_process_group():
    done = run("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
               "'import time; time.sleep(60)']); time.sleep(60)", timeout=2)
    assert done.timed_out and done.seconds < 20
    assert cause(done, "running the JAX checks", 2) == (
        "timeout: running the JAX checks ran past 2 s")


def test_a_crash_names_the_last_error_line():
    done = run("import sys; print('working'); print('ValueError: bad shard'); sys.exit(3)")
    assert done.tail == ["working", "ValueError: bad shard"]
    assert cause(done, "loading", 30) == "crash: exit 3 while loading: ValueError: bad shard"


def test_an_xla_failure_is_a_compile_cause():
    done = Finished(1, False, 1.0, ["jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED"])
    assert cause(done, "compiling", None).startswith("compile: XLA failed while compiling")


def test_causes_fit_the_schema_length():
    done = Finished(3, False, 1.0, ["Error " + "x" * 500])
    assert len(cause(done, "y" * 300, None)) <= 200
