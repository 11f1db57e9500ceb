"""What the tests share: tiny models and checkpoints built on the fly, fixture builders for
images, GGUF files and tokenizers, child-process scripts, and recorded data (data/)."""

from pathlib import Path

DATA = Path(__file__).with_name("data")  # result-file fixtures, golden outputs, recorded ids
REPO_ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).parent  # the child-process scripts live here
