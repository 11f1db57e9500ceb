"""The gemma3/ code hash: the documented algorithm, file contents only."""

import hashlib

import pytest

from matrix.code_hash import code_sha256


def _tree(root, files):
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_matches_the_documented_algorithm(tmp_path):
    files = {"gemma3/model.py": b"x = 1\n", "gemma3/layers/attention.py": b"y = 2\n",
             "gemma3/__init__.py": b""}
    _tree(tmp_path, files)
    expected = hashlib.sha256()
    for relative in sorted(files):
        expected.update(relative.encode() + b"\0" + files[relative] + b"\0")
    assert code_sha256(tmp_path) == expected.hexdigest()


def test_only_python_files_under_gemma3_count(tmp_path):
    _tree(tmp_path, {"gemma3/model.py": b"x = 1\n"})
    before = code_sha256(tmp_path)
    _tree(tmp_path, {"gemma3/README.md": b"notes", "gemma3/data.json": b"{}",
                     "harness/x.py": b"z = 3", "gemma3/__pycache__/model.cpython-311.pyc": b"\0"})
    assert code_sha256(tmp_path) == before


def test_content_and_path_changes_change_the_hash(tmp_path):
    _tree(tmp_path, {"gemma3/model.py": b"x = 1\n"})
    before = code_sha256(tmp_path)
    (tmp_path / "gemma3/model.py").write_bytes(b"x = 2\n")
    changed = code_sha256(tmp_path)
    (tmp_path / "gemma3/model.py").rename(tmp_path / "gemma3/other.py")
    assert len({before, changed, code_sha256(tmp_path)}) == 3


def test_empty_package_hashes_nothing(tmp_path):
    (tmp_path / "gemma3").mkdir()
    assert code_sha256(tmp_path) == hashlib.sha256().hexdigest()


def test_missing_package_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass --root"):
        code_sha256(tmp_path)
