"""The code hash of the model code: the documented algorithm over the numeric rooms of gemma3/,
file contents only."""

import hashlib

import pytest

from contract.code_hash import NUMERIC_ROOMS, code_sha256
from tests.support import REPO_ROOT


def _tree(root, files):
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_matches_the_documented_algorithm(tmp_path):
    files = {"gemma3/nn/model.py": b"x = 1\n", "gemma3/ckpt/gguf/file.py": b"y = 2\n",
             "gemma3/config/__init__.py": b""}
    _tree(tmp_path, files)
    expected = hashlib.sha256()
    for relative in sorted(files):
        expected.update(relative.encode() + b"\0" + files[relative] + b"\0")
    assert code_sha256(tmp_path) == expected.hexdigest()


def test_only_the_python_files_of_the_numeric_rooms_count(tmp_path):
    _tree(tmp_path, {"gemma3/nn/model.py": b"x = 1\n"})
    before = code_sha256(tmp_path)
    _tree(tmp_path, {"gemma3/nn/README.md": b"notes", "gemma3/ckpt/data.json": b"{}",
                     "harness/x.py": b"z = 3", "gemma3/nn/__pycache__/model.cpython-311.pyc": b"\0",
                     "gemma3/cli/main.py": b"help = 'new text'", "gemma3/inputs/chat.py": b"",
                     "gemma3/__init__.py": b"", "gemma3/__main__.py": b""})
    assert code_sha256(tmp_path) == before


def test_every_numeric_room_counts(tmp_path):
    _tree(tmp_path, {"gemma3/nn/model.py": b"x = 1\n"})
    seen = {code_sha256(tmp_path)}
    for room in NUMERIC_ROOMS:
        _tree(tmp_path, {f"gemma3/{room}/extra.py": b"y = 2\n"})
        seen.add(code_sha256(tmp_path))
    assert len(seen) == len(NUMERIC_ROOMS) + 1


def test_the_rooms_exist_in_this_checkout():
    assert all((REPO_ROOT / "gemma3" / room).is_dir() for room in NUMERIC_ROOMS)


def test_content_and_path_changes_change_the_hash(tmp_path):
    _tree(tmp_path, {"gemma3/nn/model.py": b"x = 1\n"})
    before = code_sha256(tmp_path)
    (tmp_path / "gemma3/nn/model.py").write_bytes(b"x = 2\n")
    changed = code_sha256(tmp_path)
    (tmp_path / "gemma3/nn/model.py").rename(tmp_path / "gemma3/nn/other.py")
    assert len({before, changed, code_sha256(tmp_path)}) == 3


def test_empty_package_hashes_nothing(tmp_path):
    (tmp_path / "gemma3").mkdir()
    assert code_sha256(tmp_path) == hashlib.sha256().hexdigest()


def test_missing_package_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass --root"):
        code_sha256(tmp_path)
