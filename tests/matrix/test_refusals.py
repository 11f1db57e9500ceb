"""The reporter never loses the matrix: a missing --results folder is an error, entries that are
not regular files are refused by name without being read, reads are size-capped, a
not_supported model carries its memory figures, and every schema limit is stated."""

import copy
import json
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from contract.registry import load_registry
from matrix.__main__ import main
from matrix.policy import MAX_FILE_BYTES
from tests.matrix.test_validate import CPU_FILE, base, only, problems
from tests.support import REPO_ROOT

ROOT = REPO_ROOT
REGISTRY = load_registry()


@pytest.fixture
def repo(tmp_path):
    """A README with the matrix markers and a results/ folder holding one valid file."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    (tmp_path / "results").mkdir()
    shutil.copy(CPU_FILE, tmp_path / "results" / CPU_FILE.name)
    return tmp_path


def run(repo: Path, *argv: str) -> int:
    return main([*argv[:1], "--readme", str(repo / "README.md"), "--root", str(ROOT),
                 *argv[1:]])


@pytest.mark.parametrize("command", ["render", "check"])
def test_a_results_typo_is_an_error_and_the_readme_is_untouched(repo, command, capsys):
    before = (repo / "README.md").read_bytes()
    assert run(repo, command, "--results", str(repo / "resutls")) == 1
    err = capsys.readouterr().err
    assert f"--results {repo / 'resutls'}: no such file or directory" in err
    assert (repo / "README.md").read_bytes() == before


def test_validate_with_a_results_typo_is_an_error(tmp_path, capsys):
    assert main(["validate", "--results", str(tmp_path / "nope")]) == 1
    assert f"--results {tmp_path / 'nope'}: no such file or directory" in capsys.readouterr().err


def test_results_that_is_a_file_is_an_error(repo, capsys):
    assert run(repo, "check", "--results", str(repo / "README.md")) == 1
    assert f"--results {repo / 'README.md'}: is a regular file, not a folder" in (
        capsys.readouterr().err)


def _fifo_reader_guard():
    """Fails the test instead of hanging forever if something opens the FIFO for reading."""
    timer = threading.Timer(20, os._exit, args=(99,))
    timer.daemon = True
    return timer


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "socket"])
def test_entries_that_are_not_regular_files_are_refused_by_name(repo, kind, capsys):
    entry = repo / "results" / f"20261101T100000Z-cpu-cpu-{kind}.json"
    if kind == "symlink":
        entry.symlink_to(repo / "results" / CPU_FILE.name)
    elif kind == "fifo":
        os.mkfifo(entry)  # opening it to read would block until a writer comes: never
    elif kind == "directory":
        entry.mkdir()
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(entry))
    guard = _fifo_reader_guard()
    guard.start()
    try:
        assert run(repo, "check", "--results", str(repo / "results")) == 1
    finally:
        guard.cancel()
    expected = {"symlink": "symlink", "fifo": "FIFO", "directory": "directory",
                "socket": "socket"}[kind]
    assert f"{entry}: $: is a {expected}, not a regular file; not read" in capsys.readouterr().err


def test_a_fifo_named_on_the_command_line_is_not_opened(tmp_path, capsys):
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    guard = _fifo_reader_guard()
    guard.start()
    try:
        assert main(["validate", str(fifo)]) == 1
    finally:
        guard.cancel()
    assert "x.json: $: is a FIFO, not a regular file" in capsys.readouterr().err


def test_hidden_and_non_json_entries_are_not_results(repo, capsys):
    (repo / "results" / ".result-abc.tmp").write_text("{half")  # the harness writing
    (repo / "results" / "NOTES.txt").write_text("not a result")
    assert run(repo, "render", "--results", str(repo / "results")) == 0
    assert "1 valid result files" in capsys.readouterr().out
    assert main(["validate", "--results", str(repo / "results")]) == 0
    assert "1 of 1 result files valid" in capsys.readouterr().out


def test_an_oversized_file_is_refused_before_parsing(tmp_path):
    text = json.dumps(base())
    text = text[:-1] + ', "pad": "' + "x" * (MAX_FILE_BYTES - len(text)) + '"}'
    message = only(problems(tmp_path, text=text, name=CPU_FILE.name))
    assert message.endswith(f"$: file is {len(text)} bytes; result files are at most "
                            f"{MAX_FILE_BYTES} bytes (20 MiB), checked before parsing")


def _not_supported(**entry):
    data = base()
    model = data["provenance"]["models"]["gemma-3-27b-it"]
    assert model["status"] == "not_supported"
    model.update(entry)
    return data


def test_the_valid_fixture_refusal_carries_consistent_figures(tmp_path):
    model = base()["provenance"]["models"]["gemma-3-27b-it"]
    assert model["reason"] == "needs 71.4 GiB > has 62.8 GiB"
    assert problems(tmp_path, _not_supported()) == []


def test_a_not_supported_reason_without_memory_figures_is_refused(tmp_path):
    message = only(problems(tmp_path, _not_supported(reason="too big for this box")))
    assert message.endswith('$.provenance.models["gemma-3-27b-it"].reason: '
                            "'too big for this box' gives no memory figures; a not_supported "
                            "reason is the planner's 'needs X GiB > has Y GiB'")


def test_a_not_supported_model_needs_its_byte_figures(tmp_path):
    found = problems(tmp_path, _not_supported(predicted_bytes=None))
    assert only(found).endswith('$.provenance.models["gemma-3-27b-it"].predicted_bytes: is null; '
                                "a not_supported model records the bytes it needed and had "
                                "(the figures of its reason)")


def test_a_refusal_that_would_have_fit_is_refused(tmp_path):
    data = _not_supported(reason="needs 10.0 GiB > has 62.8 GiB", predicted_bytes=10 * 2**30)
    assert "says needs 10 GiB > has 62.8 GiB with predicted_bytes 10737418240 and " \
           "available_bytes 67430608896: that fits" in only(problems(tmp_path, data))


def test_reason_figures_must_agree_with_the_bytes(tmp_path):
    data = _not_supported(reason="needs 99.0 GiB > has 12.0 GiB")
    found = problems(tmp_path, data)
    assert len(found) == 2, found
    assert "says needs 99 GiB, more than predicted_bytes 76665346048 (71.40 GiB)" in found[0]
    assert "says has 12 GiB, less than available_bytes 67430608896 (62.80 GiB)" in found[1]


def test_a_test_count_over_the_limit_names_the_limit(tmp_path):
    data = base()
    data["tests"] = [copy.deepcopy(data["tests"][0]) for _ in range(10001)]
    assert only(problems(tmp_path, data)).endswith(
        "$.tests: 10001 items; the schema allows at most 10000")


def test_a_string_over_the_limit_names_its_length_and_the_limit(tmp_path):
    data = base()
    data["tests"][0]["nodeid"] = "harness/checks/" + "x" * 400
    message = only(problems(tmp_path, data))
    assert message.endswith("$.tests[0].nodeid: 'harness/checks/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                            "xxxxxxxxxx… is 415 characters; the schema allows at most 300")


def test_an_empty_not_supported_reason_names_the_minimum(tmp_path):
    message = only(problems(tmp_path, _not_supported(reason="")))
    assert message.endswith('$.provenance.models["gemma-3-27b-it"].reason: \'\' is 0 '
                            "characters; the schema requires at least 1")


def test_a_long_value_keeps_the_pattern_in_the_message(tmp_path):
    data = base()
    data["provenance"]["versions"]["transformers"] = "5" * 500
    message = only(problems(tmp_path, data))
    assert "… does not match '^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$'" in message


@pytest.mark.parametrize("command", ["render", "check"])
def test_a_readme_that_is_not_utf8_is_named_with_its_byte(repo, command, capsys):
    readme = repo / "README.md"
    readme.write_bytes(b"# Gemma 3\n\xff\xfe latin-1 caf\xe9\n<!-- matrix:begin -->\n")
    before = readme.read_bytes()
    assert run(repo, command, "--results", str(repo / "results")) == 1
    assert capsys.readouterr().err == (
        f"error: {readme} is not UTF-8 text (byte 10: b'\\xff'); the README must be UTF-8 for "
        "the matrix to be written into it\n")
    assert readme.read_bytes() == before
