"""What the harness records about a GGUF checkpoint, read with the `gguf` package itself (not
through gemma3's loader, so the record does not depend on the code under test): where the file
is, its tensor-type mix, and that it holds the model the run names.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.checkpoints.digests import cached_fact
from harness.checkpoints.registry import ModelSpec

# GGUF metadata key (after the `gemma3.` prefix) -> the TextConfig field it must equal.
SHAPE_KEYS = {"block_count": "num_hidden_layers", "embedding_length": "hidden_size"}


def _reader(path: Path):
    try:
        import gguf
    except ImportError:
        raise ValueError(f"--checkpoint {path} is a GGUF file; reading it needs the `gguf` "
                         "package: pip install gguf") from None
    return gguf.GGUFReader(path)


def read_facts(path: Path) -> dict:
    """Architecture, shape keys and {tensor type: count}, from one read of the file (the
    reader parses every metadata entry, the whole vocabulary too: tens of seconds). A file cut
    short is refused first, with gemma3's message naming where it ends."""
    from gemma3.ckpt.gguf.file import check_whole

    check_whole(path)
    reader = _reader(path)
    mix = Counter(t.tensor_type.name for t in reader.tensors)
    facts = {key: _scalar(reader.fields, f"gemma3.{key}") for key in SHAPE_KEYS}
    return {"architecture": _scalar(reader.fields, "general.architecture"), **facts,
            "tensor_types": dict(sorted(mix.items(), key=lambda kv: (-kv[1], kv[0])))}


def facts(path: Path, cache=None) -> dict:
    return cached_fact(path, cache, "gguf_facts", read_facts)


def quantization(found: dict, file_sha256: str) -> dict:
    """The result file's quantization block: format, file hash, {tensor type: count}."""
    return {"format": "gguf", "file_sha256": file_sha256, "tensor_types": found["tensor_types"]}


def check_model(spec: ModelSpec, path: Path, found: dict) -> None:
    """Refuse a GGUF of another architecture or size than the model id the run records."""
    if found["architecture"] != "gemma3":
        raise ValueError(f"{path} holds a {found['architecture']!r} model "
                         f"(general.architecture); --models {spec.id} needs a gemma3 GGUF")
    text = spec.config().text
    wrong = [f"gemma3.{key} is {found[key]}, {spec.id} has {field} {getattr(text, field)}"
             for key, field in SHAPE_KEYS.items() if found[key] != getattr(text, field)]
    if wrong:
        raise ValueError(f"{path} is not {spec.id}: " + "; ".join(wrong)
                         + ". Pass the --models id of the GGUF's size")


def _scalar(fields, key: str):
    """A scalar metadata value (string or number), or None when the key is absent."""
    import gguf

    field = fields.get(key)
    if field is None:
        return None
    value = field.parts[field.data[0]]
    if field.types[0] == gguf.GGUFValueType.STRING:
        return value.tobytes().decode("utf-8")
    return value.tolist()[0]
