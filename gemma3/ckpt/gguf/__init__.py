"""llama.cpp GGUF checkpoints of Gemma 3: the file reader, the tensor names, the config from the
metadata. `gemma3.from_pretrained("model.gguf")` loads one (gemma3.ckpt.loading); this package
is what you call to look inside a file:

    config = gemma3.gguf.read_config(path)          # Gemma3Config (text decoder only)
    mix = gemma3.gguf.tensor_types(path)            # {"F32": 109, "Q5_0": 81, ...}
    meta = gemma3.gguf.read_metadata(path)          # every metadata key and its value

A GGUF of a 4b+ model holds only the text decoder (the vision tower ships as a separate mmproj
file), so it loads as a text-only model.
"""

from gemma3.ckpt.gguf.config import GGUFConfigError, read_config
from gemma3.ckpt.gguf.file import (
    GGUFError,
    dequantize,
    find_gguf,
    read_metadata,
    supported_types,
    tensor_types,
    tensors,
)

__all__ = ["GGUFConfigError", "GGUFError", "dequantize", "find_gguf", "read_config",
           "read_metadata", "supported_types", "tensor_types", "tensors"]
