"""The one type of bad-input error. Every validator and reader in gemma3 raises it (or a
subclass: ConfigError, CheckpointError, TokenizerError, ...) for input a user can fix, with a
message naming the file, key, value or option and what was expected. The `gemma3` command
reports exactly these as the user's error; anything else is a bug in gemma3 and surfaces with
its traceback. A ValueError, so code that caught ValueError before still catches it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input the user can fix: a file, key, value or option that is not what gemma3 expects."""
