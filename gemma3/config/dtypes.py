"""The parameter dtypes a model loads in, by name."""

from __future__ import annotations

import ml_dtypes
import numpy as np

from gemma3.config.errors import InputError

DTYPES = {"bfloat16": np.dtype(ml_dtypes.bfloat16), "float32": np.dtype(np.float32)}


def resolve_dtype(dtype) -> np.dtype:
    """'bfloat16', 'float32' or the dtype itself -> its numpy dtype; float16 is refused."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name == "float16":
        # Gemma 3's residual stream exceeds fp16's 65504 and turns into inf/NaN (transformers
        # #36822), so we refuse rather than return garbage.
        raise InputError("dtype float16 is not supported: Gemma 3 activations overflow float16 "
                         "and produce NaN. Use 'bfloat16' (the released weights' dtype) or "
                         "'float32'.")
    if name not in DTYPES:
        raise InputError(f"dtype {dtype!r} is not supported; use one of {sorted(DTYPES)}")
    return DTYPES[name]
