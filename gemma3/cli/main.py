"""The `gemma3` command line: `gemma3 generate` streams a completion from a checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path

from gemma3.config.errors import InputError

USER_ERROR = 2  # exit status for bad input, as argparse uses for bad arguments
FAILED = 1  # the run went through, but its output is unusable (NaN logits)
BUG = 70  # an error inside gemma3 or JAX (sysexits' EX_SOFTWARE)
ISSUES_URL = "the gemma3-jax issue tracker (README: Exit status says what to include)"

DESCRIPTION = """\
Gemma 3 in JAX (Flax NNX). Run `gemma3 generate --help` for the options of a command."""

GENERATE_EPILOG = """\
examples:
  gemma3 generate --checkpoint google/gemma-3-1b-it --chat --prompt "Write a haiku about JAX."
  gemma3 generate --checkpoint ./gemma-3-4b-it --chat --image cow.jpg --prompt "What is this?"
  echo "The capital of France is" | gemma3 generate --checkpoint ./gemma-3-270m --prompt -
  gemma3 generate --checkpoint gemma-3-270m-q4_k_m.gguf --prompt "def fibonacci(n):"

The new text goes to stdout, followed by a newline; load, compile and decode timings go to
stderr (silence them with --quiet). Generation stops at the model's end-of-sequence ids (its
config.json and generation_config.json eos_token_id; <end_of_turn> too with --chat) or after
--max-new-tokens tokens.

Control tokens typed in the prompt (<start_of_turn>, <end_of_turn>, <start_of_image>, ...)
are read as control tokens, as transformers' chat template and tokenizer read them.

exit status: 0 on success, 2 on bad input (unknown option, missing checkpoint or tokenizer,
unsupported dtype, empty or too long prompt, image for a text-only model, unreadable image,
...), 1 when the model's output is unusable (NaN logits), each with a one-line message on
stderr; 70 on an internal error (a bug: its traceback, and where to report it); 130 on
Ctrl-C, 143 on SIGTERM."""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one line (no usage block) and the status USER_ERROR."""

    def error(self, message):
        self.exit(USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gemma3", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)
    gen = commands.add_parser(
        "generate", help="complete a prompt, streaming the new text to stdout",
        description="Complete a prompt with a Gemma 3 checkpoint, streaming tokens as they are "
                    "produced.", epilog=GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("--checkpoint", required=True, metavar="DIR_OR_HUB_ID",
                     help="a checkpoint directory (config.json, *.safetensors, tokenizer.json), "
                          "a hub id such as google/gemma-3-1b-it, or a llama.cpp GGUF file "
                          "(model.gguf: config and tokenizer come from its metadata)")
    gen.add_argument("--prompt", required=True,
                     help="the prompt text; '-' reads it from stdin")
    gen.add_argument("--chat", action="store_true",
                     help="wrap the prompt in Gemma 3's chat template as a user turn followed "
                          "by the model's turn (use with -it checkpoints)")
    gen.add_argument("--system", metavar="TEXT",
                     help="a system message for --chat (folded into the user turn, as "
                          "Gemma 3's template does)")
    gen.add_argument("--image", action="append", default=[], metavar="PATH",
                     help="an image file (repeat for several; 4b, 12b and 27b only). Each "
                          "<start_of_image> in the prompt takes the next image; if the prompt "
                          "has none, the images go before the prompt text")
    gen.add_argument("--max-new-tokens", type=int, default=128, metavar="N",
                     help="most new tokens to generate (default: %(default)s)")
    gen.add_argument("--dtype", metavar="{bfloat16,float32}",
                     help="parameter and activation dtype (default: float32 on CPU, where XLA "
                          "runs it faster than bfloat16; bfloat16 on GPU and TPU)")
    gen.add_argument("--temperature", type=float, default=0.0, metavar="T",
                     help="sampling temperature; 0 means greedy decoding (default: %(default)s)")
    gen.add_argument("--top-k", type=int, metavar="K",
                     help="sample among the K most likely tokens (needs --temperature > 0)")
    gen.add_argument("--top-p", type=float, metavar="P",
                     help="nucleus sampling with mass P (needs --temperature > 0; not with "
                          "--top-k)")
    gen.add_argument("--seed", type=int, default=0, metavar="S",
                     help="random seed for sampling (default: %(default)s)")
    gen.add_argument("--quiet", action="store_true",
                     help="print only the generated text: no progress or timings on stderr")
    gen.set_defaults(run=run_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line on argv (default sys.argv[1:]); returns the exit status. The console
    script and `python -m gemma3` come in through gemma3.cli.entry, which first makes Ctrl-C
    end the process at any moment with status 130 and SIGTERM with 143."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (already reported by argparse)
        return e.code if isinstance(e.code, int) else USER_ERROR
    try:
        return args.run(args)
    except InputError as e:  # bad input: config, checkpoint, tokenizer, prompt, image, dtype
        return _user_error(args, e)
    except OSError as e:  # a file the user named is missing or unreadable; other OSErrors are ours
        if _names_a_user_path(e, args):
            return _user_error(args, e)
        return _bug(args)
    except UnusableOutput as e:
        print(f"gemma3 {args.command}: error: {e}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:  # called from Python code, which keeps its own SIGINT handler
        print(f"gemma3 {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001  # a bug: keep its traceback, never blame the input
        return _bug(args)


def _user_error(args: argparse.Namespace, error: Exception) -> int:
    message = str(error).strip() or type(error).__name__
    print(f"gemma3 {args.command}: error: {message}", file=sys.stderr)
    return USER_ERROR


def _names_a_user_path(error: OSError, args: argparse.Namespace) -> bool:
    """The error's file is one the user named (--checkpoint, --image) or inside the
    checkpoint directory they named."""
    if error.filename is None:
        return False
    failed = Path(os.fsdecode(error.filename)).expanduser().resolve()
    named = [Path(p).expanduser().resolve() for p in [args.checkpoint, *args.image] if p]
    return any(failed == p or p in failed.parents for p in named)


def _bug(args: argparse.Namespace) -> int:
    traceback.print_exc()
    print(f"gemma3 {args.command}: internal error: this is a bug in gemma3-jax, not in your "
          f"input; please report it with the traceback above at {ISSUES_URL}", file=sys.stderr)
    return BUG


@dataclasses.dataclass
class Prompt:
    """Model inputs for one prompt: input_ids [1, T], and for images the extras."""

    input_ids: object
    pixel_values: object = None
    token_type_ids: object = None


def run_generate(args: argparse.Namespace) -> int:
    from gemma3.ckpt.gguf.config import read_config
    from gemma3.ckpt.gguf.file import find_gguf
    from gemma3.ckpt.hub import resolve_checkpoint
    from gemma3.ckpt.loading import load_config
    from gemma3.cli.options import check_generate_options, check_top_k
    from gemma3.generation.sampling import make_sampler
    from gemma3.inputs.tokenizer import Tokenizer
    from gemma3.runtime import compile_cache

    dtype = check_generate_options(args)
    compile_cache.enable()  # a second run of the same prompt bucket skips compiling
    sampler = make_sampler(args.temperature, args.top_k, args.top_p)
    gguf_file = find_gguf(args.checkpoint)
    if gguf_file is not None:  # config and tokenizer come from the file's metadata
        directory, config = gguf_file, read_config(gguf_file)
        tokenizer = Tokenizer.from_gguf(gguf_file, config=config)
    else:
        directory = resolve_checkpoint(args.checkpoint)
        config = load_config(directory)
        tokenizer = Tokenizer.from_directory(directory, config=config)
    check_top_k(args.top_k, config.text.vocab_size)
    prompt = build_prompt(args, tokenizer, config)
    stop_ids = stop_token_ids(directory, config, chat=args.chat)
    model = _load(directory, dtype, args)
    printer = _Printer(tokenizer.stream(skip_special_tokens=True), set(stop_ids),
                       config.text.pad_token_id)
    timings = _generate(model, prompt, printer, args, sampler=sampler,
                        stop_ids=[*stop_ids, config.text.pad_token_id])
    printer.finish()
    if not args.quiet:
        _report(timings)
    return 0


def _load(directory: Path, dtype: str, args: argparse.Namespace):
    """The model, with its load time on stderr at once (compiling comes next, and takes a
    while for the larger models)."""
    import jax

    from gemma3.ckpt.loading import from_pretrained

    start = time.perf_counter()
    model = from_pretrained(directory, dtype=dtype, text_only=not args.image,
                            progress=False if args.quiet else None)
    if not args.quiet:
        print(f"gemma3: loaded {directory} ({dtype}, {jax.default_backend()}) in "
              f"{time.perf_counter() - start:.2f} s", file=sys.stderr, flush=True)
    return model


def _generate(model, prompt: Prompt, printer: _Printer, args: argparse.Namespace, **options):
    from gemma3.generation.loop import Timings, generate

    timings = Timings()
    _SINKS.append(printer)
    try:
        generate(model, prompt.input_ids, max_new_tokens=args.max_new_tokens, seed=args.seed,
                 pixel_values=prompt.pixel_values, token_type_ids=prompt.token_type_ids,
                 on_token=_on_token, timings=timings, **options)
    finally:
        _SINKS.pop()
    return timings


def build_prompt(args: argparse.Namespace, tokenizer, config) -> Prompt:
    """Token ids of the prompt (chat template applied with --chat), images expanded."""
    import numpy as np

    from gemma3.config.special_tokens import BOI
    from gemma3.inputs import chat

    text = args.prompt
    if args.image and BOI not in text:
        text = BOI * len(args.image) + text
    if args.chat:
        messages = [{"role": "user", "content": text}]
        if args.system is not None:
            messages.insert(0, {"role": "system", "content": args.system})
        ids = chat.encode(tokenizer, messages, add_generation_prompt=True)
    else:
        ids = tokenizer.encode(text, add_bos=True)
    if args.image:
        return _image_prompt(ids, args, tokenizer, config)
    _check_length(len(ids), 0, args.max_new_tokens, config)
    return Prompt(np.asarray([ids], np.int32))


def _image_prompt(ids: list[int], args: argparse.Namespace, tokenizer, config) -> Prompt:
    from gemma3.inputs.images import prepare_image_prompt

    if config.vision is None:
        raise InputError(f"--image given, but the checkpoint {args.checkpoint} is a text-only "
                         "model; images need a multimodal one (gemma-3-4b, -12b or -27b)")
    if tokenizer.boi_id != config.boi_token_id:
        raise InputError(f"the tokenizer {tokenizer.source} has no <start_of_image> token at id "
                         f"{config.boi_token_id}, the id the model's config expects for images")
    inputs = prepare_image_prompt(ids, list(args.image), config)
    n_tokens = inputs["input_ids"].shape[1]
    _check_length(n_tokens, n_tokens - len(ids), args.max_new_tokens, config)
    return Prompt(inputs["input_ids"], inputs["pixel_values"], inputs["token_type_ids"])


def _check_length(n_tokens: int, image_tokens: int, max_new_tokens: int, config) -> None:
    """Refuses a prompt that, with the new tokens, exceeds the model's context length."""
    limit = config.text.max_position_embeddings
    if n_tokens + max_new_tokens > limit:
        images = f" ({image_tokens} of them for images)" if image_tokens else ""
        raise InputError(f"the prompt has {n_tokens} tokens{images}; with --max-new-tokens "
                         f"{max_new_tokens} that exceeds the model's context of {limit} tokens. "
                         "Shorten the prompt or lower --max-new-tokens")


def stop_token_ids(directory: Path, config, chat: bool) -> list[int]:
    """eos ids of config.json and generation_config.json, plus <end_of_turn> for chat."""
    from gemma3.config import END_OF_TURN_ID

    ids = list(config.eos_token_ids)
    path = directory / "generation_config.json"
    if path.is_file():
        try:
            eos = json.loads(path.read_text()).get("eos_token_id", [])
        except json.JSONDecodeError as e:
            raise InputError(f"{path} is not valid JSON: {e}") from None
        eos = eos if isinstance(eos, list) else [eos]
        vocab = config.text.vocab_size
        bad = [i for i in eos if isinstance(i, bool) or not isinstance(i, int)
               or not 0 <= i < vocab]
        if bad:
            raise InputError(f"{path}: eos_token_id {bad[0]!r} is not a token id of this model "
                             f"(an integer in [0, {vocab}))")
        ids += eos
    if chat:
        ids.append(END_OF_TURN_ID)
    return sorted({int(i) for i in ids})


_SINKS: list = []  # the printer of the generation in progress


def _on_token(step, tokens) -> None:
    """generate's on_token: one module-level function, because a new callback per call would
    make generate compile its decode loop again for every run in the same process."""
    _SINKS[-1](int(tokens[0]))


class UnusableOutput(RuntimeError):
    """The model produced tokens that no working Gemma 3 produces: there is no text to print."""


class _Printer:
    """Prints each token's new text as it comes; nothing from the first stop id on.

    The pad id ends generation too (generate() gets it as a stop id): a working Gemma 3 never
    predicts <pad>, but argmax over NaN logits does (NaN weights, a config that cannot be
    right), and that must be an error, not an empty line."""

    def __init__(self, stream, stop_ids: set[int], pad_id: int):
        self.stream, self.stop_ids, self.pad_id = stream, stop_ids, pad_id
        self.steps = 0
        self.pad_step: int | None = None
        self.stopped = self.printed = False

    def __call__(self, token: int) -> None:
        if not self.stopped and token == self.pad_id:
            self.pad_step = self.steps
        self.stopped = self.stopped or token in self.stop_ids or token == self.pad_id
        self.steps += 1
        piece = "" if self.stopped else self.stream.push(token)
        if piece:
            sys.stdout.write(piece)
            sys.stdout.flush()
            self.printed = True

    def finish(self) -> None:
        """Prints the text held back and the final newline (no empty line for no text when
        the output is unusable), then raises UnusableOutput if it is."""
        tail = self.stream.flush()
        if self.printed or tail or self.pad_step is None:
            sys.stdout.write(tail + "\n")
            sys.stdout.flush()
        if self.pad_step is not None:
            raise UnusableOutput(
                f"the model generated <pad> (id {self.pad_id}) as new token {self.pad_step + 1}, "
                "which a working Gemma 3 never does: its logits are not finite (NaN). Check the "
                "checkpoint's weights and config.json (rms_norm_eps, sizes) and the inputs")


def _report(t) -> None:
    def rate(n, seconds):
        return f"{n / seconds:.1f} tokens/s" if seconds > 0 else "n/a"

    print(f"gemma3: prefill {t.prompt_tokens} tokens in {t.prefill:.3f} s "
          f"({rate(t.prompt_tokens, t.prefill)}; compile {t.prefill_compile:.2f} s)\n"
          f"gemma3: decode {t.new_tokens} tokens in {t.decode:.3f} s "
          f"({rate(t.new_tokens, t.decode)}; compile {t.decode_compile:.2f} s)",
          file=sys.stderr)
