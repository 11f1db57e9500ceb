"""Child process of tests/test_sharding.py. Emulated CPU devices must be configured before JAX
starts, so these checks run here and the test session keeps its single device.

  python tests/support/sharding_child.py parity OUT TEXT_CKPT MM_CKPT    8 devices
  python tests/support/sharding_child.py rss OUT CKPT FSDP TP            8 devices
  python tests/support/sharding_child.py multihost OUT TEXT_CKPT         2 devices per process; run one
                                                                 per JAX_PROCESS_ID
Each writes a JSON report to OUT; arrays go to OUT with suffix .npz.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import sys
from pathlib import Path

import jax
import numpy as np

PROMPT = (2, 12)
NEW_TOKENS = 6
TEXT_MESHES = ((8, 1), (1, 8), (2, 4))
MM_MESH = (4, 2)
# Parameters whose shard shapes the parent checks, by a short name.
WATCHED = {
    "q_proj": ("language_model", "layers", 0, "self_attn", "q_proj", "kernel"),
    "k_proj": ("language_model", "layers", 0, "self_attn", "k_proj", "kernel"),
    "o_proj": ("language_model", "layers", 0, "self_attn", "o_proj", "kernel"),
    "gate_proj": ("language_model", "layers", 0, "mlp", "gate_proj", "kernel"),
    "down_proj": ("language_model", "layers", 0, "mlp", "down_proj", "kernel"),
    "embed": ("language_model", "embed_tokens", "weight"),
    "vision_q": ("vision_tower", "encoder", "layers", 0, "self_attn", "q_proj", "kernel"),
    "vision_fc1": ("vision_tower", "encoder", "layers", 0, "mlp", "fc1", "kernel"),
    "projector": ("multi_modal_projector", "mm_input_projection_weight"),
}


def setup(devices: int) -> None:
    jax.config.update("jax_num_cpu_devices", devices)
    jax.config.update("jax_default_matmul_precision", "highest")  # as tests/conftest.py


def text_inputs(vocab: int):
    ids = np.random.RandomState(0).randint(3, vocab, PROMPT)
    mask = np.ones_like(ids)
    mask[1, :4] = 0  # left padding in row 1
    return ids, mask


def run_text(model):
    from gemma3.generation.loop import generate
    from gemma3.runtime.sharding import to_numpy

    ids, mask = text_inputs(model.config.text.vocab_size)
    return to_numpy(model(ids, mask)), generate(model, ids, mask, max_new_tokens=NEW_TOKENS)


def run_images(model, inputs: Path):
    """Images and prompts come from the parent (inputs.npz): building them needs torch."""
    from gemma3.generation.loop import generate

    arrays = np.load(inputs)
    ids, mask = arrays["ids"], arrays["mask"]
    kwargs = {"pixel_values": arrays["pixels"], "token_type_ids": arrays["token_types"]}
    logits = np.asarray(model(ids, mask, **kwargs))
    return logits, generate(model, ids, mask, max_new_tokens=NEW_TOKENS, **kwargs)


def shard_shapes(model) -> dict:
    from flax import nnx

    flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    found = {}
    for name, path in WATCHED.items():
        if path in flat:
            value = flat[path].get_value()
            shapes = {tuple(s.data.shape) for s in value.addressable_shards}
            assert shapes == {value.sharding.shard_shape(value.shape)}, (name, shapes)
            found[name] = {"global": list(value.shape), "shard": list(shapes.pop())}
    return found


def compare(ckpt: str, meshes, run) -> list[dict]:
    """Each mesh against the single-device run of the same checkpoint."""
    import gemma3
    from gemma3.runtime.sharding import make_mesh, model_mesh

    ref_logits, ref_tokens = run(gemma3.from_pretrained(ckpt, dtype="float32", progress=False))
    np.savez(Path(ckpt) / "reference.npz", logits=ref_logits, tokens=ref_tokens)
    cases = []
    for fsdp, tp in meshes:
        model = gemma3.from_pretrained(ckpt, dtype="float32", mesh=make_mesh(fsdp, tp),
                                       progress=False)
        logits, tokens = run(model)
        cases.append({"mesh": [fsdp, tp], "max_abs_diff": float(np.abs(logits - ref_logits).max()),
                      "ref_max_abs": float(np.abs(ref_logits).max()),
                      "tokens_equal": bool(np.array_equal(tokens, ref_tokens)),
                      "tokens": tokens.tolist(), "shards": shard_shapes(model),
                      "model_mesh": dict(model_mesh(model).shape)})
    return cases


def cache_specs() -> dict:
    """The specs constrain_cache pins for a kv-1 and a kv-8 cache on a (2, 4) mesh."""
    from gemma3.config import Gemma3Config
    from gemma3.nn.cache import KVCache
    from gemma3.runtime.sharding import constrain_cache, make_mesh

    mesh, specs = make_mesh(2, 4), {}
    for kv in (1, 8):
        cfg = dataclasses.replace(Gemma3Config.gemma3_270m().text, num_attention_heads=8,
                                  num_key_value_heads=kv, head_dim=16,
                                  layer_types=Gemma3Config.gemma3_270m().text.layer_types[:6])
        cache = jax.jit(lambda c=cfg: constrain_cache(KVCache.create(c, 2, 64, np.float32),
                                                      mesh))()
        specs[f"kv{kv}"] = {"keys": padded_spec(cache.layers[0].keys),
                            "key_valid": padded_spec(cache.key_valid)}
    return specs


def padded_spec(x) -> list:
    spec = list(x.sharding.spec)
    return spec + [None] * (x.ndim - len(spec))


def parity(out: str, text_ckpt: str, mm_ckpt: str) -> dict:
    setup(8)
    return {"text": compare(text_ckpt, TEXT_MESHES, run_text),
            "images": compare(mm_ckpt, [MM_MESH],
                              lambda m: run_images(m, Path(mm_ckpt) / "inputs.npz")),
            "cache": cache_specs()}


def current_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def peak_rss() -> int:
    """This process's peak RSS (VmHWM). ru_maxrss would do, but Linux carries it over from the
    forked copy of the parent (pytest with torch, ~1 GB) across exec."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines()
                if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def rss(out: str, ckpt: str, fsdp: str, tp: str) -> dict:
    setup(8)
    from flax import nnx

    import gemma3
    from gemma3.runtime.sharding import make_mesh

    mesh = make_mesh(int(fsdp), int(tp))
    jax.numpy.zeros(1).block_until_ready()  # backend up before the baseline
    base = current_rss()
    model = gemma3.from_pretrained(ckpt, mesh=mesh, progress=False)
    peak = peak_rss()
    held = sum(s.data.nbytes for _, v in nnx.to_flat_state(nnx.state(model, nnx.Param))
               for s in v.get_value().addressable_shards)
    files = sum(f.stat().st_size for f in Path(ckpt).glob("*.safetensors"))
    return {"base": base, "peak": peak, "final": current_rss(), "held": held,
            "checkpoint_bytes": files, "shards": shard_shapes(model)}


def multihost(out: str, text_ckpt: str) -> dict:
    setup(2)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import gemma3
    from gemma3.ckpt.placement import put_sharded
    from gemma3.runtime.sharding import initialize_distributed, make_mesh

    joined = initialize_distributed()
    mesh = make_mesh(2, 2)  # fsdp across the two processes, tp within each
    model = gemma3.from_pretrained(text_ckpt, dtype="float32", mesh=mesh, progress=False)
    logits, tokens = run_text(model)
    np.savez(Path(out).with_suffix(".npz"), logits=logits, tokens=tokens)
    return {"joined": joined, "process": jax.process_index(), "processes": jax.process_count(),
            "devices": jax.device_count(), "local_devices": jax.local_device_count(),
            "rows_read": rows_read(mesh, put_sharded), "shards": shard_shapes(model)}


def rows_read(mesh, put_sharded) -> list[int]:
    """The rows of a [4, 4] source that put_sharded reads on this process for P('fsdp', 'tp')."""
    from jax.sharding import NamedSharding, PartitionSpec

    class Spy:
        def __init__(self, array):
            self.array, self.shape, self.rows = array, array.shape, set()

        def __getitem__(self, index):
            self.rows.update(range(4)[index[0]])
            return self.array[index]

    spy = Spy(np.arange(16.0).reshape(4, 4))
    put_sharded(spy, np.float32, NamedSharding(mesh, PartitionSpec("fsdp", "tp")))
    return sorted(spy.rows)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    mode, out, *args = sys.argv[1:]
    report = {"parity": parity, "rss": rss, "multihost": multihost}[mode](out, *args)
    Path(out).write_text(json.dumps(report))
