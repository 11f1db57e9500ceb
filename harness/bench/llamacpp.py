"""llama.cpp as a measured peer: the GGUF file as llama.cpp runs it (its own quantized kernels),
timed the way the bench times the others, through llama-cpp-python when it is importable.

A run is a whole generation, as for JAX and transformers: the prompt evaluated at once (logits
of its last position only), then one token per step, greedy (argmax of the last logits, here in
numpy), with the bench's thread count for both the prompt and the steps. Batch 1 only: the
Python binding runs one sequence.
"""

from __future__ import annotations

import importlib.util
import os
import time

import numpy as np

# Tested version, and how long it took to build from source here (no binary wheel on PyPI).
VERSION = "0.3.36"
BUILD_NOTE = "2-core AMD EPYC (Zen 2, AVX2): 8 min 55 s; 2-core Xeon with AMX: about 6 min"
INSTALL = f"CMAKE_ARGS=-DGGML_NATIVE=ON pip install llama-cpp-python=={VERSION}"
KV_DTYPE = "float16"  # llama.cpp's default K and V cache type
SIDE = "llamacpp"


def missing_reason() -> str | None:
    """Why the llama.cpp column is left out, with how to add it; None when it can run."""
    if importlib.util.find_spec("llama_cpp") is not None:
        return None
    return (f"llama.cpp column left out: llama_cpp (llama-cpp-python) is not importable. "
            f"Install it with `{INSTALL}` (it builds from source; {BUILD_NOTE}), then pass "
            "--gguf FILE")


def file_type(path) -> str:
    """The file's quantization as llama.cpp names it ('Q4_K_M'), from general.file_type."""
    import gguf

    from gemma3.ckpt.gguf.file import read_metadata

    try:
        code = int(read_metadata(path)["general.file_type"])
        return gguf.LlamaFileType(code).name.removeprefix("MOSTLY_")
    except (KeyError, TypeError, ValueError):  # not recorded, or a type this gguf predates
        return "gguf"


def weight_bytes(path) -> int:
    """Bytes of every tensor in the file: what one decode step reads of the weights (the tied
    embedding is the output head, read whole)."""
    from gemma3.ckpt.gguf.file import tensors

    return sum(t.nbytes for t in tensors(path))


class LlamaCppTimer:
    """The bench's timer interface (load_s, compile_s, best(ids, new_tokens)) over llama.cpp."""

    def __init__(self, args, context: int = 2048):
        import llama_cpp

        threads = len(os.sched_getaffinity(0))  # all this process may use, as the others
        self.repeats = args.repeats
        start = time.perf_counter()
        self.llm = llama_cpp.Llama(args.checkpoint, n_ctx=context, n_batch=context,
                                   n_ubatch=context, n_threads=threads, n_threads_batch=threads,
                                   verbose=False)
        self.load_s = time.perf_counter() - start
        self.compile_s = None  # nothing compiled ahead
        self.vocab = self.llm.n_vocab()

    def _generate(self, ids: list[int], new_tokens: int) -> None:
        self.llm.reset()
        self.llm.eval(ids)
        for _ in range(new_tokens - 1):
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.vocab,))
            self.llm.eval([int(np.argmax(logits))])

    def best(self, ids, new_tokens: int) -> float:
        """Fastest of `repeats` generations after one warm-up; ids [1, T]."""
        [row] = np.asarray(ids).tolist()
        runs = []
        for _ in range(self.repeats + 1):
            start = time.perf_counter()
            self._generate(row, new_tokens)
            runs.append(time.perf_counter() - start)
        return min(runs[1:])
