"""The weight map: checkpoint tensor names -> model parameter paths, one transform per kind, and
the bijection check every reader's tensors go through (match_tensors).

Every key layout the hub and transformers write is normalised first:
`model.*` (270m, 1b), `language_model.model.*` (hub 4b+), `model.language_model.*` (v5),
`vision_tower.vision_model.*` / `vision_tower.*` / `model.vision_tower.*`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from gemma3.ckpt.errors import LoadError

ParamPath = tuple  # e.g. ('language_model', 'layers', 0, 'mlp', 'up_proj', 'kernel')

# (checkpoint prefix, canonical prefix), longest first so `model.language_model.` wins over
# `model.`.
PREFIXES = (
    ("model.language_model.", "language_model."),
    ("language_model.model.", "language_model."),
    ("model.vision_tower.vision_model.", "vision_tower."),
    ("vision_tower.vision_model.", "vision_tower."),
    ("model.vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
    ("language_model.", "language_model."),
    ("model.", "language_model."),
)
# Output heads tied to the embedding: accepted only as an exact copy of it.
TIED_HEADS = ("lm_head.weight", "language_model.lm_head.weight")


def canonical_name(key: str) -> str:
    for prefix, canonical in PREFIXES:
        if key.startswith(prefix):
            return canonical + key[len(prefix):]
    return key


@dataclasses.dataclass(frozen=True)
class Transform:
    """Maps a checkpoint array to a parameter, and a parameter shape to the checkpoint shape."""

    name: str
    apply: Callable[[np.ndarray, tuple[int, ...]], np.ndarray]
    source_shape: Callable[[tuple[int, ...]], tuple[int, ...]]


def _linear(out_axes: int) -> Transform:
    """torch Linear weight [out, in] -> kernel [*out_dims, *in_dims]: the same bytes, only the
    out axis split into named ones (heads), so loading copies without transposing."""

    def apply(w: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return w.reshape(shape)

    def source(shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(shape[:out_axes])), int(np.prod(shape[out_axes:])))

    return Transform(f"linear(out_axes={out_axes})", apply, source)


COPY = Transform("copy", lambda w, shape: w.reshape(shape), lambda shape: shape)
LINEAR = _linear(1)
LINEAR_HEADS_OUT = _linear(2)  # q/k/v: kernel [N, H, D] from [N*H, D]
# Conv weight OIHW -> HWIO (flax Conv kernel).
CONV = Transform("conv", lambda w, shape: w.transpose(2, 3, 1, 0).reshape(shape),
                 lambda shape: (shape[3], shape[2], shape[0], shape[1]))


@dataclasses.dataclass(frozen=True)
class Rule:
    """A canonical-name pattern; groups named `i` become integer path parts."""

    pattern: str
    path: str  # format string over the match's groups, '.'-separated
    transform: Transform = COPY

    def match(self, name: str) -> tuple[tuple[str | int, ...], Transform] | None:
        m = re.fullmatch(self.pattern, name)
        if m is None:
            return None
        parts = self.path.format(**m.groupdict()).split(".")
        return tuple(int(p) if p.isdigit() else p for p in parts), self.transform


_LAYER = r"language_model\.layers\.(?P<i>\d+)\."
TEXT_RULES = (
    Rule(r"language_model\.embed_tokens\.weight", "language_model.embed_tokens.weight"),
    Rule(r"language_model\.norm\.weight", "language_model.norm.weight"),
    Rule(_LAYER + r"self_attn\.(?P<p>[qkv])_proj\.weight",
         "language_model.layers.{i}.self_attn.{p}_proj.kernel", LINEAR_HEADS_OUT),
    Rule(_LAYER + r"self_attn\.o_proj\.weight",
         "language_model.layers.{i}.self_attn.o_proj.kernel", LINEAR),
    Rule(_LAYER + r"self_attn\.(?P<p>[qk])_norm\.weight",
         "language_model.layers.{i}.self_attn.{p}_norm.weight"),
    Rule(_LAYER + r"mlp\.(?P<p>gate|up|down)_proj\.weight",
         "language_model.layers.{i}.mlp.{p}_proj.kernel", LINEAR),
    Rule(_LAYER + r"(?P<p>input_layernorm|post_attention_layernorm|pre_feedforward_layernorm"
         r"|post_feedforward_layernorm)\.weight", "language_model.layers.{i}.{p}.weight"),
)


# Per-head bias [N, H] <- torch bias [N * H].
_HEAD_BIAS = Transform("head_bias", lambda w, shape: w.reshape(shape),
                       lambda shape: (int(np.prod(shape)),))
_V = r"vision_tower\."
_VL = _V + r"encoder\.layers\.(?P<i>\d+)\."
_VP = "vision_tower.encoder.layers.{i}."
VISION_RULES = (
    Rule(_V + r"embeddings\.patch_embedding\.weight",
         "vision_tower.embeddings.patch_embedding.kernel", CONV),
    Rule(_V + r"embeddings\.patch_embedding\.bias", "vision_tower.embeddings.patch_embedding.bias"),
    Rule(_V + r"embeddings\.position_embedding\.weight",
         "vision_tower.embeddings.position_embedding.weight"),
    Rule(_VL + r"(?P<n>layer_norm[12])\.(?P<w>weight|bias)", _VP + "{n}.{w}"),
    Rule(_VL + r"self_attn\.(?P<p>[qkv])_proj\.weight", _VP + "self_attn.{p}_proj.kernel",
         LINEAR_HEADS_OUT),
    Rule(_VL + r"self_attn\.(?P<p>[qkv])_proj\.bias", _VP + "self_attn.{p}_proj.bias", _HEAD_BIAS),
    Rule(_VL + r"self_attn\.out_proj\.weight", _VP + "self_attn.out_proj.kernel", LINEAR),
    Rule(_VL + r"self_attn\.out_proj\.bias", _VP + "self_attn.out_proj.bias"),
    Rule(_VL + r"mlp\.(?P<p>fc[12])\.weight", _VP + "mlp.{p}.kernel", LINEAR),
    Rule(_VL + r"mlp\.(?P<p>fc[12])\.bias", _VP + "mlp.{p}.bias"),
    Rule(_V + r"post_layernorm\.(?P<w>weight|bias)", "vision_tower.post_layernorm.{w}"),
    Rule(r"multi_modal_projector\.mm_input_projection_weight",
         "multi_modal_projector.mm_input_projection_weight", COPY),
    Rule(r"multi_modal_projector\.mm_soft_emb_norm\.weight",
         "multi_modal_projector.mm_soft_emb_norm.weight"),
)
# Tensors a checkpoint may hold that Gemma 3 never uses, skipped by name: SigLIP's attention
# pooling head, stored when the vision config says vision_use_head=true (transformers builds it,
# but Gemma 3 reads the tower's last hidden state, never the pooled output).
UNUSED = (r"vision_tower\.head\..+",)


def unused(name: str) -> bool:
    """Whether a canonical tensor name is one Gemma 3 does not use (see UNUSED)."""
    return any(re.fullmatch(pattern, name) for pattern in UNUSED)


def rules() -> tuple[Rule, ...]:
    return TEXT_RULES + VISION_RULES


def match(name: str) -> tuple[tuple[str | int, ...], Transform] | None:
    """The parameter path and transform for a canonical tensor name, or None."""
    for rule in rules():
        found = rule.match(name)
        if found is not None:
            return found
    return None


def match_tensors(tensors: list, params: dict, mismatch: str, *, same_values,
                  skip_vision: bool = False, canonical=canonical_name) -> dict:
    """The bijection check shared by every reader. tensors: records with .name, .file and
    .shape (torch's axis order); params: the abstract model's flat parameters; canonical: file
    name -> canonical name; same_values(a, b): whether two records hold equal tensors (the
    tied-head check). Returns {parameter path: (record, Transform)}; raises one LoadError
    listing every unexpected, missing, duplicated or misshapen tensor."""
    plan: dict[ParamPath, tuple[Any, Transform]] = {}  # path -> (record, Transform)
    problems, tied = [], []
    for info in tensors:
        name = canonical(info.name)
        if name in TIED_HEADS:
            tied.append(info)
            continue
        if skip_vision and name.startswith(("vision_tower.", "multi_modal_projector.")) \
                or unused(name):
            continue
        found = match(name)
        if found is None or found[0] not in params:
            problems.append(f"unexpected tensor {info.name} in {info.file.name}")
            continue
        path, transform = found
        if path in plan:
            other = plan[path][0]
            problems.append(f"{info.name} in {info.file.name} and {other.name} in "
                            f"{other.file.name} both map to {_dotted(path)}")
            continue
        expected = tuple(transform.source_shape(params[path].shape))
        if tuple(info.shape) != expected:
            problems.append(f"{info.name} in {info.file.name} has shape {list(info.shape)}; the "
                            f"config expects {list(expected)}")
        plan[path] = (info, transform)
    problems += [f"missing tensor for {_dotted(p)}" for p in params if p not in plan]
    problems += _check_tied(tied, plan, same_values)
    if problems:
        raise LoadError(f"{mismatch} ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    return plan


def _check_tied(tied: list, plan, same_values) -> list[str]:
    """A stored lm_head is accepted only if it is the embedding itself (Gemma 3 ties them)."""
    embed = plan.get(("language_model", "embed_tokens", "weight"))
    problems = []
    for info in tied:
        if embed is None or info.shape != embed[0].shape or not same_values(info, embed[0]):
            problems.append(f"{info.name} in {info.file.name} differs from the embedding; Gemma 3 "
                            "ties the output head to it and an untied head is not supported")
    return problems


def _dotted(path: ParamPath) -> str:
    return ".".join(str(p) for p in path)
