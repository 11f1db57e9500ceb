"""Pull requests that merge green in any order: branches that each add a result file the way
README's "Contributing results" says (the file only), merged into main in both orders, leave
main green after what CI runs on main (.ci/publish-matrix), with the same README either way.
The old flow, where each pull request re-rendered the README itself, does not."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.support import DATA, REPO_ROOT

VALID = DATA / "results" / "valid"
BASE, FIRST, SECOND = (VALID / "20261120T150000Z-gpu-nvidia-h100-80gb-hbm3-1x.json",
                       VALID / "20261125T100000Z-gpu-nvidia-h200-1x.json",
                       VALID / "20261126T100000Z-cpu-cpu-1x.json")
SOURCE = '"""Stand-in for the model sources: the matrix tests hash this file."""\n'
README = "# Gemma 3 in JAX\n\n<!-- matrix:begin -->\n<!-- matrix:end -->\n"
PUBLISH = REPO_ROOT / ".ci" / "publish-matrix"


def sh(repo, *args, check=True):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise AssertionError(f"{args} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done


def matrix(repo, *args, check=True):
    return sh(repo, sys.executable, "-m", "matrix", *args, check=check)


@pytest.fixture
def origin(tmp_path):
    """main: one result, the README rendered by the publish job; two pull-request branches,
    each adding one result file and nothing else."""
    repo = tmp_path / "origin"
    (repo / "gemma3" / "nn").mkdir(parents=True)
    (repo / "gemma3" / "nn" / "__init__.py").write_text(SOURCE)
    (repo / "results").mkdir()
    shutil.copy(BASE, repo / "results")
    (repo / "README.md").write_text(README)
    sh(repo, "git", "init", "-q", "-b", "main")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "base")
    sh(repo, "bash", str(PUBLISH))
    for branch, result in (("pr-1", FIRST), ("pr-2", SECOND)):
        sh(repo, "git", "checkout", "-qb", branch, "main")
        shutil.copy(result, repo / "results")
        sh(repo, "git", "add", "results")
        sh(repo, "git", "commit", "-qm", f"result {result.name}")
        # What CI runs on the pull request: validation and the cells it changes.
        matrix(repo, "validate")
        assert result.name in matrix(repo, "diff", "--base", "main").stdout
    sh(repo, "git", "checkout", "-q", "main")
    return repo


def merged(origin, tmp_path, order):
    clone = tmp_path / "-".join(order)
    sh(tmp_path, "git", "clone", "-q", str(origin), str(clone))
    for branch in order:
        sh(clone, "git", "merge", "-q", "--no-ff", "--no-edit", f"origin/{branch}")
    sh(clone, "bash", str(PUBLISH))  # the push to main
    return clone


def test_pull_requests_merged_in_either_order_leave_main_green(origin, tmp_path):
    one = merged(origin, tmp_path, ("pr-1", "pr-2"))
    other = merged(origin, tmp_path, ("pr-2", "pr-1"))
    for clone in (one, other):
        assert matrix(clone, "check").returncode == 0
        assert "from 3 valid result files" in (clone / "README.md").read_text()
    assert (one / "README.md").read_bytes() == (other / "README.md").read_bytes()


def test_readmes_rendered_in_each_pull_request_break_main(origin, tmp_path):
    """Why the README is rendered on main only: two branches that each commit their own render
    either conflict, or merge cleanly into a README that counts the wrong files."""
    repo = tmp_path / "old-flow"
    sh(tmp_path, "git", "clone", "-q", str(origin), str(repo))
    for branch in ("pr-1", "pr-2"):
        sh(repo, "git", "checkout", "-qb", f"old-{branch}", f"origin/{branch}")
        matrix(repo, "render")
        sh(repo, "git", "commit", "-qam", "render in the pull request")
    sh(repo, "git", "checkout", "-q", "main")
    sh(repo, "git", "merge", "-q", "--no-edit", "old-pr-1")
    second = sh(repo, "git", "merge", "-q", "--no-edit", "old-pr-2", check=False)
    assert second.returncode != 0 or matrix(repo, "check", check=False).returncode != 0
