"""`python -m harness` with its slow parts replaced, for tests/test_harness_signals.py:

    python -m tests.harness_signal_driver --models gemma-3-270m,gemma-3-270m-it --results R ...

The real main, signal handling, runner, run_child, staging and result writer run; faked are the
fingerprint (no JAX subprocess), the synthetic weights (a few bytes), and the two model
processes (the reference and the pytest checks are small python -c children). The first model
finishes; for the second (or the model $DRIVER_HANG_AT counts, 1 or 2), the stage named by
$DRIVER_HANG (checkpoint, reference or checks) hangs after writing $DRIVER_DIR/ready, so the test knows when to send its signal. A hanging
child also starts a grandchild in its process group; both write their pids to $DRIVER_DIR.
"""

import os
import runpy
import sys
import time
from pathlib import Path

from harness.checkpoints import synthetic
from harness.run import runner

DIR = Path(os.environ["DRIVER_DIR"])
HANG = os.environ["DRIVER_HANG"]
HANG_AT = int(os.environ.get("DRIVER_HANG_AT", "2"))
GiB = 2**30
CALLS = {"checkpoint": 0, "reference": 0, "checks": 0}

# A child that records its pid and its grandchild's, says it is ready, and sleeps.
SLEEPER = (
    "import os, subprocess, sys, time; d = sys.argv[1]; "
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
    "open(os.path.join(d, 'pids'), 'w').write(f'{os.getpid()} {g.pid}'); "
    "open(os.path.join(d, 'ready'), 'w').close(); time.sleep(120)"
)
REPORT = "import json, sys; json.dump({'tests': [], 'summary': {}}, open(sys.argv[1], 'w'))"


def fingerprint(backend):
    return {"backend": "cpu", "device_kind": "cpu", "device_count": 1,
            "memory_per_device_bytes": 64 * GiB, "available_bytes": 64 * GiB,
            "versions": {"python": "3.12.0", "jax": "0.10.2", "jaxlib": "0.10.2",
                         "flax": "0.12.8", "numpy": "2.0.0", "torch": None,
                         "transformers": None},
            "host": {"cpu": "test", "cores": 2, "ram_bytes": 64 * GiB, "os": "Linux"},
            "reference": {"gpu_free_bytes": [], "host_bytes": 64 * GiB}}


def hangs(stage: str) -> bool:
    CALLS[stage] += 1
    return HANG == stage and CALLS[stage] == HANG_AT


def write_checkpoint(spec, directory, seed, progress=None):
    (directory / "model.safetensors").write_bytes(b"half a checkpoint")
    if hangs("checkpoint"):
        (DIR / "ready").write_text("")
        time.sleep(120)


def reference_args(spec, ckpt, placements, opts):
    # Also proves the reference's partial output is cleaned: a staging folder as
    # harness/reference.py makes one.
    refdir = runner.reference_dir(opts.cache, spec.id, next(iter(placements)), ckpt.key,
                                  runner.make_prompts(spec.config(), opts.seed))
    (refdir.parent / f".{refdir.name}-killed").mkdir(parents=True, exist_ok=True)
    code = SLEEPER if hangs("reference") else "pass"
    return [sys.executable, "-c", code, str(DIR)]


def pytest_args(report):
    if hangs("checks"):
        return [sys.executable, "-c", SLEEPER, str(DIR)]
    return [sys.executable, "-c", REPORT, str(report)]


runner.take_fingerprint = fingerprint
synthetic.write_checkpoint = write_checkpoint
runner._reference_args = reference_args
runner._pytest_args = pytest_args
sys.argv = ["python -m harness", *sys.argv[1:]]
runpy.run_module("harness", run_name="__main__", alter_sys=True)
