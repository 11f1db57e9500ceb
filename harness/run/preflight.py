"""Refuse a misconfigured run before it spends time: folders the run cannot write, and real
weights that are not the model they are run as (another model's checkpoint would crash the
reference and land as that model's "❌ Fails (crash)" evidence). Each refusal is one line; the
CLI prints it and exits 2 before anything is written.

`check_config_matches` takes a config object, so any checkpoint reader (config.json, a GGUF's
metadata) can feed it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gemma3.ckpt.hub import HUB_ID
from gemma3.config import Gemma3Config
from harness.checkpoints import registry
from harness.checkpoints.hub import hub_config_dir
from harness.system.cache import cache_root

# The architecture numbers a checkpoint must share with its model id: the harness builds the
# prompts, the memory plan and the reference from the registry's config.
TEXT_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
               "num_attention_heads", "num_key_value_heads", "head_dim")
VISION_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "image_size", "patch_size")
NAMED = 3  # differing fields named in the message


class Refused(ValueError):
    """A run that cannot give evidence as configured; the message is one line."""


def check_run(results: Path, cache: str | None, models: list[registry.ModelSpec],
              checkpoint: str | None) -> None:
    """Every pre-check of `python -m harness`, cheapest first."""
    check_writable("--results", Path(results))
    check_writable("--cache", cache_root(cache))
    if checkpoint is not None:
        spec, = models
        if check_gguf(spec, checkpoint, cache):
            return
        found, where = checkpoint_config(checkpoint)
        if found is not None:
            check_config_matches(spec, found, where)


def check_gguf(spec: registry.ModelSpec, given: str, cache: str | None) -> bool:
    """Whether `given` is a GGUF checkpoint; refused if it is not `spec` (architecture and
    shapes from its metadata, read once and cached for the run that follows)."""
    from gemma3.ckpt.gguf.file import (
        find_gguf,  # here: it imports jax, which most runs' checks never need
    )
    from harness.checkpoints import gguf_facts as gguf_source

    try:
        path = find_gguf(Path(given).expanduser())
        if path is not None:
            gguf_source.check_model(spec, path, gguf_source.facts(path, cache))
    except ValueError as e:  # the library's message, under the option that named the file
        raise Refused(f"--checkpoint {given}: {_one_line(e)}") from None
    return path is not None


def check_writable(option: str, path: Path) -> None:
    """`path` is a folder this process can create files in, or can be created as one. Probed by
    creating (and removing) a hidden directory: os.access says yes to root on read-only mounts."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == path else f"is inside {existing}, which is"
        raise Refused(f"{option} {path}: {where} a file, not a folder; pass a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".harness-probe-", dir=existing))
    except OSError as e:
        target = "" if existing == path else f" (in {existing}, to create it)"
        raise Refused(f"{option} {path}: cannot write there{target}: {e.strerror}; pass a "
                      "folder you can write to") from None


def checkpoint_config(given: str) -> tuple[Gemma3Config | None, str]:
    """(the config the weights declare, where it was read); None for a single-file checkpoint,
    whose reader checks it itself. A hub id is resolved from the cache or by fetching only its
    config.json, so neither a wrong id nor a missing network costs a weights download."""
    from gemma3.ckpt.loading import load_config

    path = Path(given).expanduser()
    if path.is_dir():
        directory = path
    elif path.is_file():
        return None, given
    elif HUB_ID.match(given):
        try:
            directory = hub_config_dir(given)
        except ValueError as e:
            raise Refused(str(e)) from None
    else:
        raise Refused(f"--checkpoint {given!r}: no such directory or file, and not a hub id "
                      "like 'google/gemma-3-1b-it'")
    try:
        return load_config(directory), str(directory / "config.json")
    except ValueError as e:  # CheckpointError, ConfigError: missing, not JSON, not Gemma 3
        raise Refused(f"--checkpoint {given}: {_one_line(e)}") from None


def check_config_matches(spec: registry.ModelSpec, found: Gemma3Config, where: str) -> None:
    """Refused unless `found` has `spec`'s architecture; names the first differing fields and
    the registry sizes the weights do match."""
    differences = architecture_differences(spec.config(), found)
    if not differences:
        return
    named = ", ".join(differences[:NAMED])
    more = f" and {len(differences) - NAMED} more" if len(differences) > NAMED else ""
    sizes = [size for size in registry.SHARDS
             if not architecture_differences(Gemma3Config.for_size(size), found)]
    fits = [m.id for m in registry.MODELS if m.size in sizes]
    hint = (f"these weights are {' or '.join(fits)}: pass --models {fits[0]}" if fits else
            f"pass {spec.id}'s weights")
    raise Refused(f"--checkpoint {where} is not {spec.id}: {named}{more}; {hint}")


def architecture_differences(expected: Gemma3Config, found: Gemma3Config) -> list[str]:
    """`hidden_size 1152 (expected 640)` per architecture field that differs, text tower
    first."""
    out = [f"{name} {getattr(found.text, name)} (expected {getattr(expected.text, name)})"
           for name in TEXT_FIELDS if getattr(found.text, name) != getattr(expected.text, name)]
    if (expected.vision is None) != (found.vision is None):
        state = "a vision tower" if found.vision is not None else "no vision tower"
        out.append(f"{state} (expected {'none' if expected.vision is None else 'one'})")
    elif expected.vision is not None:
        out += [f"vision {name} {getattr(found.vision, name)} "
                f"(expected {getattr(expected.vision, name)})"
                for name in VISION_FIELDS
                if getattr(found.vision, name) != getattr(expected.vision, name)]
    return out


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__
