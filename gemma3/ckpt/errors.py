"""The errors of reading a checkpoint: each names the file, tensor or key, and what was expected."""

from __future__ import annotations

from gemma3.config.errors import InputError


class CheckpointError(InputError):
    """A checkpoint directory or file that cannot be read as a Gemma 3 checkpoint."""


class NonFiniteError(CheckpointError):
    """A tensor holds NaN or Inf: the model would silently produce garbage."""


class LoadError(CheckpointError):
    """The checkpoint does not match the model its config describes."""
