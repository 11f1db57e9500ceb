"""Ctrl-C and SIGTERM end a real `gemma3 generate` at once, at every stage, with one line.

Each test starts `python -m gemma3 generate` on a tiny checkpoint, waits for one stage (the
imports, the compile, the decode loop), sends the signal and checks the exit status, that
stderr holds exactly one line (no traceback, no "Fatal Python error") and that the process
was gone within EXIT_WITHIN seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import Gemma3ForCausalLM

from tests.support import REPO_ROOT
from tests.support.tiny import randomize, text_config
from tests.support.tokenizer_fixtures import write_test_tokenizer

REPO = REPO_ROOT
EXIT_WITHIN = 2.0  # seconds from the signal to the exit, what the issue asks
NEW_TOKENS = 4000  # 1.3-2.8 ms a token measured here: 5-11 s of decoding after the first one
NEVER_PREDICTED = (0, 1, 106)  # pad, eos, <end_of_turn>: zero embedding rows, logit 0

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="waits on /proc/<pid>/status (Linux) for the handlers")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny model that never stops by itself: the tied embedding rows of the stop ids are
    zero, so their logit is 0 while the top logit of ~300 with std ~8 is far above it."""
    directory = tmp_path_factory.mktemp("tiny-long")
    config = text_config(max_position_embeddings=NEW_TOKENS + 96, num_hidden_layers=2)
    model = Gemma3ForCausalLM(config).eval()  # two layers: it compiles in a few seconds
    randomize(model, seed=0)
    with torch.no_grad():
        model.model.embed_tokens.weight[list(NEVER_PREDICTED)] = 0
    model.save_pretrained(directory)
    write_test_tokenizer(directory)
    return directory


def start(checkpoint: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "gemma3", "generate", "--checkpoint", str(checkpoint),
               "--prompt", "Hello the world", "--max-new-tokens", str(NEW_TOKENS),
               "--dtype", "float32", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    # SIGINT at its default in the child, however pytest was started (a background job of a
    # script inherits it ignored, and the CLI rightly keeps an inherited SIG_IGN).
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env=env, preexec_fn=_default_sigint)  # noqa: PLW1509 - one syscall


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_handlers(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """Until the CLI has installed its handlers: SIGTERM (which Python leaves alone) caught."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{process.pid}/status").read_text()
        caught = int(next(x for x in status.splitlines() if x.startswith("SigCgt:")).split()[1],
                     16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.005)
    raise AssertionError(f"no SIGTERM handler after {timeout} s")


def stop(process: subprocess.Popen, signum: int) -> tuple[int, bytes, str, float]:
    """Sends signum; returns the exit status, the rest of stdout and stderr, and the seconds
    the process took to exit."""
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        status = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the process ignored the signal for 10 s") from None
    seconds = time.monotonic() - sent
    return status, process.stdout.read(), process.stderr.read().decode(), seconds


def read_stderr_line_with(process: subprocess.Popen, text: str) -> str:
    seen = ""
    while text not in seen:
        line = process.stderr.readline().decode()
        assert line, f"the process ended before printing {text!r}: {seen!r}"
        seen += line
    return seen


def test_ctrl_c_during_the_imports(checkpoint):
    process = start(checkpoint)
    wait_for_handlers(process)  # jax is still being imported (that takes ~2 s)
    status, out, err, seconds = stop(process, signal.SIGINT)
    assert (status, out, err) == (130, b"", "gemma3: interrupted\n")
    assert seconds < EXIT_WITHIN


@pytest.mark.parametrize("signum, status, word", [(signal.SIGINT, 130, "interrupted"),
                                                  (signal.SIGTERM, 143, "terminated")],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_during_the_compile(checkpoint, signum, status, word):
    process = start(checkpoint)
    read_stderr_line_with(process, "gemma3: loaded")  # compiling the prefill starts now
    got, out, err, seconds = stop(process, signum)
    assert (got, err) == (status, f"gemma3: {word}\n")
    assert out == b"", "the signal came after the first token, not during the compile"
    assert seconds < EXIT_WITHIN


def test_ctrl_c_during_the_decode(checkpoint):
    process = start(checkpoint, "--quiet")
    first = os.read(process.stdout.fileno(), 1)  # blocks until the first token's text
    status, out, err, seconds = stop(process, signal.SIGINT)
    assert first and not (first + out).endswith(b"\n"), "the decode finished before the signal"
    assert (status, err) == (130, "gemma3: interrupted\n")
    assert seconds < EXIT_WITHIN


def test_the_cli_module_imports_no_jax():
    """What lets the handlers come before the ~2 s of importing jax: `import gemma3` is lazy."""
    code = "import sys, gemma3.cli; print(sorted({'jax', 'flax'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    assert result.stdout == "[]\n"


def test_ctrl_c_in_the_first_instant_is_one_line(tmp_path):
    """SIGINT 0.05 s after the start: the handlers come with the entry module, before argparse
    and the rest of the command line are imported, so even then it is one line and 130."""
    from tests.support.early_signal import interrupt_during_import

    command = ["-m", "gemma3", "generate", "--checkpoint", str(tmp_path), "--prompt", "x"]
    stopped, tries = interrupt_during_import(command, first_module="gemma3")
    assert (stopped.status, stopped.lines) == (130, ["gemma3: interrupted"]), (
        f"after {tries} tries: {stopped}")
