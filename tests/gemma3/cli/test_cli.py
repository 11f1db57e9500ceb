"""The `gemma3` command line, end to end on a tiny random checkpoint with the test tokenizer."""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gemma3
from gemma3.ckpt.loading import load_config
from gemma3.cli.main import build_parser, build_prompt, main
from gemma3.generation.loop import generate
from gemma3.inputs import chat
from gemma3.inputs.tokenizer import Tokenizer
from tests.support import REPO_ROOT
from tests.support.tiny import save_text_model
from tests.support.tokenizer_fixtures import write_test_tokenizer

MAX_NEW = 12
PROMPT = "Hello the world"
STOP = [1, 106]  # an instruction model's generation_config eos ids


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-it")
    save_text_model(directory, seed=0)
    write_test_tokenizer(directory)  # vocab 301, as the checkpoint's
    (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": STOP}))
    return directory


@pytest.fixture(scope="module")
def reference(checkpoint):
    """Greedy new tokens from gemma3.generate, cut at the first stop id, for a prompt's ids."""
    model = gemma3.from_pretrained(checkpoint, dtype="float32", progress=False)

    def run(ids: list[int]) -> list[int]:
        out = generate(model, np.asarray([ids]), max_new_tokens=MAX_NEW, stop_ids=STOP)[0]
        stops = np.flatnonzero(np.isin(out, STOP))
        return out[: stops[0] if stops.size else None].tolist()

    return run


@pytest.fixture(scope="module")
def tok(checkpoint) -> Tokenizer:
    return Tokenizer.from_directory(checkpoint)


def generate_args(checkpoint, *extra) -> list[str]:
    return ["generate", "--checkpoint", str(checkpoint), "--max-new-tokens", str(MAX_NEW),
            "--dtype", "float32", *extra]


def test_streams_the_decode_of_generate(checkpoint, reference, tok, capsys):
    assert main(generate_args(checkpoint, "--prompt", PROMPT)) == 0
    out, err = capsys.readouterr()
    tokens = reference(tok.encode(PROMPT))
    assert out == tok.decode(tokens, skip_special_tokens=True) + "\n"
    assert "loaded" in err and "prefill" in err and "decode" in err and "tokens/s" in err


def test_chat_uses_the_template(checkpoint, reference, tok, capsys):
    code = main(generate_args(checkpoint, "--prompt", " the end ", "--chat", "--system", "Hi",
                              "--quiet"))
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    ids = chat.encode(tok, [{"role": "system", "content": "Hi"},
                            {"role": "user", "content": " the end "}])
    assert out == tok.decode(reference(ids), skip_special_tokens=True) + "\n"


def test_stops_at_the_eos_ids(checkpoint, reference, tok, tmp_path, capsys):
    tokens = reference(tok.encode(PROMPT))
    # stop at the first token that has not come before, past the first two
    at = next(i for i in range(2, len(tokens)) if tokens[i] not in tokens[:i])
    shutil.copytree(checkpoint, tmp_path, dirs_exist_ok=True)
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [tokens[at]]}))
    assert main(generate_args(tmp_path, "--prompt", PROMPT, "--quiet")) == 0
    out = capsys.readouterr().out
    assert out == tok.decode(tokens[:at], skip_special_tokens=True) + "\n"


def test_help(capsys):
    assert main(["--help"]) == 0
    assert "generate" in capsys.readouterr().out
    assert main(["generate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--checkpoint", "--prompt", "--chat", "--system", "--image",
                   "--max-new-tokens", "--dtype", "--temperature", "--top-k", "--top-p", "--seed",
                   "--quiet", "float32 on CPU", "exit status"):
        assert option in text


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "red.png"
    Image.new("RGB", (8, 6), (255, 0, 0)).save(path)
    return path


@pytest.mark.parametrize("extra, message", [
    (["--dtype", "float16"], "dtype float16 is not supported"),
    (["--dtype", "int8"], "dtype 'int8' is not supported"),
    (["--max-new-tokens", "300"], ("the prompt has 13 tokens; with --max-new-tokens 300 that "
                                   "exceeds the model's context of 256 tokens")),
    (["--max-new-tokens", "0"], "--max-new-tokens 0: expected a positive integer"),
    (["--system", "x"], "--system needs --chat"),
    (["--top-k", "5"], "--top-k 5 needs --temperature > 0"),
    (["--image", "PNG"], "is a text-only model"),
    (["--image", "missing.png"], "--image missing.png: no such file"),
    (["--temperature", "hot"], "argument --temperature: invalid float value: 'hot'"),
    (["--colour"], "unrecognized arguments: --colour"),
])
def test_bad_input_is_one_line_and_status_2(checkpoint, png, capsys, extra, message):
    extra = [str(png) if a == "PNG" else a for a in extra]
    args = ["generate", "--checkpoint", str(checkpoint), "--prompt", PROMPT, *extra]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1, err


def test_missing_checkpoint_and_tokenizer(tmp_path, checkpoint, capsys):
    assert main(["generate", "--checkpoint", str(tmp_path / "nope"), "--prompt", "x"]) == 2
    assert "is not a checkpoint directory" in capsys.readouterr().err
    shutil.copy(checkpoint / "config.json", tmp_path)
    assert main(["generate", "--checkpoint", str(tmp_path), "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert f"no tokenizer.json in {tmp_path}" in err and err.count("\n") == 1


def test_image_prompt_for_a_multimodal_config(tmp_path, png):
    from tests.support.vision_fixtures import BOI, EOI, IMAGE, TOKENS_PER_IMAGE, VOCAB, hf_config

    hf_config().to_json_file(tmp_path / "config.json")
    write_test_tokenizer(tmp_path, VOCAB, image_ids=(BOI, EOI, IMAGE))
    config, tok = load_config(tmp_path), Tokenizer.from_directory(tmp_path, load_config(tmp_path))
    args = build_parser().parse_args(["generate", "--checkpoint", str(tmp_path), "--prompt",
                                      "What is this?", "--chat", "--image", str(png)])
    prompt = build_prompt(args, tok, config)
    expected = chat.encode(tok, [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": "What is this?"}]}])
    block = [108, BOI, *[IMAGE] * TOKENS_PER_IMAGE, EOI, 108]
    at = expected.index(BOI)
    assert prompt.input_ids[0].tolist() == expected[:at] + block + expected[at + 1:]
    assert prompt.token_type_ids.sum() == TOKENS_PER_IMAGE
    assert prompt.pixel_values.shape == (1, 3, config.vision.image_size, config.vision.image_size)
    two = argparse.Namespace(**{**vars(args), "image": [str(png)] * 2, "chat": False})
    with pytest.raises(ValueError, match="2 image"):  # one <start_of_image>, two images
        build_prompt(argparse.Namespace(**{**vars(two), "prompt": "<start_of_image> x"}),
                     tok, config)


def test_python_dash_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gemma3", "generate", "--checkpoint",
                             str(tmp_path / "nope"), "--prompt", "x"],
                            capture_output=True, text=True, check=False,
                            cwd=REPO_ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("gemma3 generate: error:") and result.stderr.count("\n") == 1


def test_a_truncated_image_is_bad_input_naming_the_file(tmp_path, png):
    from tests.support.vision_fixtures import BOI, EOI, IMAGE, VOCAB, hf_config

    hf_config().to_json_file(tmp_path / "config.json")
    write_test_tokenizer(tmp_path, VOCAB, image_ids=(BOI, EOI, IMAGE))
    config, tok = load_config(tmp_path), Tokenizer.from_directory(tmp_path, load_config(tmp_path))
    cut = tmp_path / "cut.png"
    from PIL import Image

    Image.new("RGB", (64, 48), (1, 2, 3)).save(cut)
    cut.write_bytes(cut.read_bytes()[:80])
    args = build_parser().parse_args(["generate", "--checkpoint", str(tmp_path), "--prompt",
                                      "What is this?", "--image", str(cut)])
    with pytest.raises(gemma3.config.InputError,
                       match=f"^image {cut} could not be read: image file is truncated"):
        build_prompt(args, tok, config)


@pytest.mark.parametrize("error", [KeyError("layers"), ValueError("inside jax"),
                                   OSError(5, "Input/output error", "/var/cache/xla/x.bin")],
                         ids=["KeyError", "ValueError", "OSError elsewhere"])
def test_a_bug_keeps_its_traceback_and_is_not_blamed_on_the_input(monkeypatch, capsys, error):
    """Only InputError (and OSErrors of the files the user named) are the user's; a ValueError
    from inside gemma3 or JAX, or an OSError on a file nobody named, is a bug."""
    import gemma3.cli.main as cli

    def broken(args):
        raise error

    monkeypatch.setattr(cli, "run_generate", broken)
    assert main(["generate", "--checkpoint", "ckpt", "--prompt", "x"]) == cli.BUG == 70
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert type(error).__name__ in err
    assert err.rstrip().splitlines()[-1].startswith(
        "gemma3 generate: internal error: this is a bug in gemma3-jax, not in your input")


def test_an_oserror_on_a_file_the_user_named_is_bad_input(monkeypatch, capsys, tmp_path):
    import gemma3.cli.main as cli

    named = tmp_path / "ckpt"

    def unreadable(args):
        raise PermissionError(13, "Permission denied", str(named / "model.safetensors"))

    monkeypatch.setattr(cli, "run_generate", unreadable)
    assert main(["generate", "--checkpoint", str(named), "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gemma3 generate: error: [Errno 13] Permission denied")
    assert "Traceback" not in err and err.count("\n") == 1
