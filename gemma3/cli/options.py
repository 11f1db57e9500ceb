"""Checks of `gemma3 generate`'s options, before any checkpoint is read.

Each error names the option and the value as the user typed them (`--top-k 0: expected a
positive integer`), never a library class, so the message says what to change on the command
line.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from gemma3.config.errors import InputError

SEED_RANGE = (-(2**63), 2**63 - 1)  # what jax.random.key accepts


class OptionError(InputError):
    """A command-line option with a value that cannot work."""


def check_generate_options(args: argparse.Namespace) -> str:
    """Checks every option that needs no checkpoint, reads `--prompt -` from stdin, and returns
    the dtype name to load with."""
    _expect(args.max_new_tokens >= 1, "--max-new-tokens", args.max_new_tokens,
            "expected a positive integer")
    _check_sampling(args)
    low, high = SEED_RANGE
    _expect(low <= args.seed <= high, "--seed", args.seed,
            "expected an integer from -2**63 to 2**63 - 1")
    if args.system is not None and not args.chat:
        raise OptionError("--system needs --chat (a system message is part of the chat template)")
    if not args.checkpoint.strip():
        raise OptionError("--checkpoint is empty: give a checkpoint directory or a hub id")
    for path in args.image:
        if not Path(path).is_file():
            what = "is a directory, not an image file" if Path(path).is_dir() else "no such file"
            raise OptionError(f"--image {path}: {what}")
    args.prompt = _read_prompt(args.prompt, has_images=bool(args.image))
    return _dtype_name(args.dtype)


def _check_sampling(args: argparse.Namespace) -> None:
    t = args.temperature
    _expect(math.isfinite(t) and t >= 0, "--temperature", t,
            "expected a finite number >= 0 (0 means greedy decoding)")
    if args.top_k is not None:
        _expect(args.top_k >= 1, "--top-k", args.top_k, "expected a positive integer")
    if args.top_p is not None:
        _expect(0 < args.top_p <= 1, "--top-p", args.top_p, "expected a number in (0, 1]")
    for option, value in (("--top-k", args.top_k), ("--top-p", args.top_p)):
        if value is not None and t == 0:
            raise OptionError(f"{option} {value} needs --temperature > 0 (temperature 0 is "
                              "greedy decoding, which always takes the most likely token)")
    if args.top_k is not None and args.top_p is not None:
        raise OptionError("--top-k and --top-p: choose one")


def check_top_k(top_k: int | None, vocab_size: int) -> None:
    """--top-k against the checkpoint's vocabulary (known once its config is read)."""
    if top_k is not None:
        _expect(top_k <= vocab_size, "--top-k", top_k,
                f"the model's vocabulary has only {vocab_size} tokens")


def _read_prompt(prompt: str, has_images: bool) -> str:
    """The prompt text (stdin for '-'); empty text is an error unless images are given (an
    image alone is a prompt for captioning)."""
    source = "--prompt"
    if prompt == "-":
        source = "--prompt - (stdin)"
        try:
            prompt = sys.stdin.read()
        except UnicodeDecodeError as e:
            raise OptionError(f"{source}: the input is not UTF-8 text ({e})") from None
    if not prompt.strip() and not has_images:
        got = "empty" if not prompt else "only whitespace"
        raise OptionError(f"{source} is {got}: give the text to complete")
    return prompt


def _dtype_name(dtype: str | None) -> str:
    import jax

    from gemma3.config import resolve_dtype

    name = dtype or ("float32" if jax.default_backend() == "cpu" else "bfloat16")
    try:
        return resolve_dtype(name).name
    except (TypeError, ValueError) as e:  # jnp.dtype of an unknown name is a TypeError
        raise OptionError(f"--dtype {name}: {e}") from None


def _expect(condition: bool, option: str, value, expected: str) -> None:
    if not condition:
        raise OptionError(f"{option} {value}: {expected}")
