"""The transformers reference, run in its own process before the JAX checks; its outputs are
cached on disk so that reference and JAX never hold memory at the same time.

    python -m harness.reference --model gemma-3-1b-it --checkpoint DIR --source synthetic:0 \
        --dtypes float32,bfloat16 [--cache DIR] [--seed 0]

Per dtype it stores, under <cache>/reference/<model>-<dtype>-<key>/ (key: checkpoint source,
prompts, dtype, torch and transformers versions, REFERENCE_VERSION):
  logits.npy [T, V]        full logits of the logits prompt (float32)
  hidden.npy [L, T, D]     hidden_states 0..L-1 (embeddings, then layers 0..L-2; transformers'
                           last entry is after the final norm, so it is left out)
  gen_tokens.npy [N]       greedy continuation (HF generate, do_sample=False), crossing the window
  gen_margin.npy [N]       top-1 minus top-2 logit at each generated step
  batch_logits.npy [2,T,V] the left-padded batch (position_ids = cumsum(mask) - 1, as
                           gemma3.generate derives them)
  batch_tokens.npy [2, M], batch_margin.npy [2, M]   its greedy continuation
  mm_logits.npy [K, V]     4b and up: the last K positions of the image prompt
  real weights only (harness/parity/realtext.py), the texts tokenized by the reference's
  tokenizer:
  rt_prompt_ids.npy [P, L] natural prompts, right-padded with 0; rt_prompt_lens.npy [P]
  rt_tokens.npy, rt_margin.npy [P, N]   their greedy continuations and top-1 margins
  text_ids.npy [T]         the perplexity text; text_logprobs.npy [T-1] log p of each next token
  text_kl_logits.npy [K, V]  its logits at realtext.kl_positions(T) (for the bf16 KL)
  meta.json                versions, placement, seconds, each GPU's peak; real weights: the prompts and the
                           reference's decoded continuations ("realtext")

A GGUF checkpoint (a .gguf file) is loaded through transformers' own GGUF support
(gguf_file=...), so its dequantization is independent of gemma3's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from harness.checkpoints import registry
from harness.parity import realtext
from harness.parity.prompts import MULTIMODAL_COMPARED, Prompts, make_prompts
from harness.reference.store import (
    DONE,
    is_real,
    library_version,
    reference_dir,
    save_outputs,
)
from harness.system.threads import apply_torch_threads


def run_reference(spec: registry.ModelSpec, checkpoint: Path, dtype: str,
                  prompts: Prompts, texts: list | None = None,
                  where: dict | None = None) -> dict[str, np.ndarray]:
    """The reference outputs; with `texts` (a list: real weights) also the real-text ones,
    the decoded continuations appended to `texts`. `where`: the planner's placement
    (harness/memory/placement.py's to_json); None: GPU 0 when torch sees one, else the host."""
    import torch

    model = _hf_model(spec, checkpoint, dtype, where)
    device = next(model.parameters()).device
    out = {}
    with torch.no_grad():
        run = model(_t(prompts.logits, device), output_hidden_states=True)
        out["logits"] = _np(run.logits[0])
        out["hidden"] = np.stack([_np(h[0]) for h in run.hidden_states[:-1]])
        del run
        tokens, margins = _generate(model, prompts.generate, None, prompts.new_tokens)
        out["gen_tokens"], out["gen_margin"] = tokens[0], margins[0]
        out["batch_logits"] = _batch_logits(model, prompts, device)
        out["batch_tokens"], out["batch_margin"] = _generate(
            model, prompts.batch_ids, prompts.batch_mask, prompts.batch_new_tokens)
        if prompts.multimodal is not None:
            out["mm_logits"] = _multimodal(model, prompts.multimodal, device)
        if texts is not None:
            out.update(_realtext(model, _hf_tokenizer(checkpoint), texts))
    return out


def _realtext(model, tokenizer, texts: list) -> dict[str, np.ndarray]:
    """The real-text outputs (see the module docstring); the decoded continuations go to texts."""
    device = next(model.parameters()).device
    prompts = [tokenizer(p)["input_ids"] for p in realtext.PROMPTS]  # <bos> first
    out = {"rt_prompt_lens": np.asarray([len(p) for p in prompts], np.int32),
           "rt_prompt_ids": np.zeros((len(prompts), max(map(len, prompts))), np.int32)}
    tokens, margins = [], []
    for row, ids in enumerate(prompts):
        out["rt_prompt_ids"][row, :len(ids)] = ids
        made, margin = _generate(model, np.asarray([ids]), None, realtext.NEW_TOKENS)
        tokens.append(made[0])
        margins.append(margin[0])
        texts.append(tokenizer.decode(made[0], skip_special_tokens=True))
    ids = np.asarray(tokenizer(realtext.text())["input_ids"], np.int32)
    logits = _np(model(_t(ids[None], device)).logits[0])
    out["rt_tokens"], out["rt_margin"] = np.stack(tokens), np.stack(margins)
    out["text_ids"], out["text_logprobs"] = ids, realtext.next_token_logprobs(logits, ids)
    out["text_kl_logits"] = logits[realtext.kl_positions(len(ids))]
    return out


def _hf_model(spec, checkpoint: Path, dtype: str, where: dict | None):
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3ForConditionalGeneration

    cls = Gemma3ForConditionalGeneration if spec.multimodal else Gemma3ForCausalLM
    args, kwargs = _hf_location(checkpoint)
    kwargs.update(dtype=getattr(torch, dtype), attn_implementation="eager")
    kind = where["kind"] if where else ("gpu" if torch.cuda.is_available() else "host")
    budgets = {int(i): int(n) for i, n in (where or {}).get("max_memory", {"0": 0}).items()}
    if kind == "host":
        return cls.from_pretrained(*args, **kwargs).eval()
    if kind == "gpu":  # straight onto the one GPU, never the whole model in host RAM
        return cls.from_pretrained(*args, **kwargs, device_map={"": min(budgets)}).eval()
    # layer by layer over the GPUs, within each one's budget
    model = cls.from_pretrained(*args, **kwargs, device_map="auto", max_memory=budgets)
    return _on_gpus_only(model).eval()


def _on_gpus_only(model):
    """accelerate puts what its GPU budgets cannot hold on the host or disk; the planner said
    they hold it all, so anything left over is its error to report, not a slow run to accept."""
    elsewhere = {name: dev for name, dev in model.hf_device_map.items()
                 if not isinstance(dev, int)}
    if elsewhere:
        shown = ", ".join(f"{n} -> {d}" for n, d in list(elsewhere.items())[:3])
        raise RuntimeError(f"the planner's GPU budgets did not hold the reference: accelerate "
                           f"placed {len(elsewhere)} module(s) off the GPUs ({shown}); "
                           f"CUDA_CONTEXT or the work estimate in harness/memory is too low")
    return model


def _hf_location(checkpoint: Path) -> tuple[tuple, dict]:
    """from_pretrained's arguments: a directory, or a GGUF file via transformers' GGUF loader."""
    if checkpoint.suffix == ".gguf":
        return (checkpoint.parent,), {"gguf_file": checkpoint.name}
    return (checkpoint,), {}


def _hf_tokenizer(checkpoint: Path):
    from transformers import AutoTokenizer

    args, kwargs = _hf_location(checkpoint)
    return AutoTokenizer.from_pretrained(*args, **kwargs)


def _generate(model, ids: np.ndarray, mask: np.ndarray | None, new_tokens: int):
    """Greedy tokens [B, N] (padded with 0 after a stop, as gemma3.generate pads) and the
    reference's top-1 margin at each step [B, N] (inf after a stop)."""
    import torch

    device = next(model.parameters()).device
    mask = np.ones_like(ids) if mask is None else mask
    run = model.generate(_t(ids, device), attention_mask=_t(mask, device),
                         max_new_tokens=new_tokens, do_sample=False, top_k=None, top_p=None,
                         output_logits=True, return_dict_in_generate=True, pad_token_id=0)
    made = run.sequences[:, ids.shape[1]:].cpu().numpy()
    tokens = np.zeros((ids.shape[0], new_tokens), np.int32)
    tokens[:, :made.shape[1]] = made
    margins = np.full((ids.shape[0], new_tokens), np.inf, np.float32)
    for step, logits in enumerate(run.logits):
        top2 = torch.topk(logits.float(), 2, dim=-1).values.cpu().numpy()
        margins[:, step] = top2[:, 0] - top2[:, 1]
    return tokens, margins


def _batch_logits(model, prompts: Prompts, device) -> np.ndarray:
    mask = prompts.batch_mask
    positions = np.where(mask > 0, np.cumsum(mask, -1) - 1, 0)  # generate()'s positions
    run = model(_t(prompts.batch_ids, device), attention_mask=_t(mask, device),
                position_ids=_t(positions, device))
    logits = _np(run.logits)
    logits[mask == 0] = 0.0  # pad queries are garbage on both sides; not compared
    return logits


def _multimodal(model, inputs: dict, device) -> np.ndarray:
    import torch

    pixels = torch.tensor(inputs["pixel_values"]).to(device=device, dtype=model.dtype)
    run = model(_t(inputs["input_ids"], device), pixel_values=pixels,
                token_type_ids=_t(inputs["token_type_ids"], device),
                attention_mask=_t(np.ones_like(inputs["input_ids"]), device))
    return _np(run.logits[0, -MULTIMODAL_COMPARED:])


def _t(array: np.ndarray, device):
    import torch

    return torch.tensor(np.asarray(array, np.int64), device=device)


def _np(tensor) -> np.ndarray:
    return tensor.float().cpu().numpy()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.reference", description=__doc__.split(
        "\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--source", required=True, help="checkpoint provenance, part of the cache key")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--cache", default=None)
    p.add_argument("--seed", type=int, default=0, help="prompt seed")
    p.add_argument("--placements", default="{}", type=json.loads,
                   help="JSON: dtype -> the planner's placement (default: GPU 0 or the host)")
    args = p.parse_args(argv)
    apply_torch_threads()
    spec = registry.get(args.model)
    prompts = make_prompts(spec.config(), args.seed)
    for dtype in args.dtypes.split(","):
        target = reference_dir(args.cache, spec.id, dtype, args.source, prompts)
        if (target / DONE).exists():
            continue
        start = time.perf_counter()
        print(f"reference: {spec.id} {dtype} ...", file=sys.stderr, flush=True)
        texts: list[str] | None = [] if is_real(args.source) else None
        where = args.placements.get(dtype)
        outputs = run_reference(spec, args.checkpoint, dtype, prompts, texts, where)
        meta = {"model": spec.id, "dtype": dtype, "source": args.source, "placement": where,
                "seconds": time.perf_counter() - start,
                "torch": library_version("torch"), "transformers": library_version("transformers")}
        if texts is not None:
            meta["realtext"] = {"prompts": list(realtext.PROMPTS), "reference": texts}
        if where is not None and where["kind"] != "host":  # corrects placement.CUDA_CONTEXT
            import torch

            meta["gpu_peak_bytes"] = {i: torch.cuda.max_memory_reserved(int(i))
                                      for i in where["max_memory"]}
        save_outputs(target, outputs, meta)
        del outputs
    return 0

