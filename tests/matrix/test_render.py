"""Golden render of the matrix from fixture results; idempotence, escaping, `check` and markers.

The golden file is tests/support/data/matrix_golden.md. After an intended change to the output,
regenerate it with `MATRIX_UPDATE_GOLDEN=1 python -m pytest tests/matrix/test_render.py` and
read the diff before committing.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from contract.code_hash import code_sha256
from matrix.__main__ import main
from tests.support import DATA

FIXTURES = DATA
RESULTS = FIXTURES / "results"
GOLDEN = FIXTURES / "matrix_golden.md"
# The fixture results were made "on" this gemma3/ source; its hash is their fresh code_sha256.
SOURCE = '"""Stand-in for the model sources: the matrix tests hash this file."""\n'
FRESH = "246b0aea8372d0b22d20299a198e338674047114f31e33dc1eec7c085ef750db"
README = (
    "# Gemma 3 in JAX\n\nIntro.\n\n<!-- matrix:begin -->\nstale text\n<!-- matrix:end -->\n\n"
    "## After\n"
)


def make_repo(tmp_path: Path, *result_dirs: str) -> Path:
    """A throwaway checkout: gemma3/ source, results/ copied from fixture dirs, a README."""
    (tmp_path / "gemma3" / "nn").mkdir(parents=True)
    (tmp_path / "gemma3" / "nn" / "__init__.py").write_text(SOURCE)
    (tmp_path / "results").mkdir()
    for name in result_dirs:
        for path in sorted((RESULTS / name).glob("*.json")):
            shutil.copy(path, tmp_path / "results" / path.name)
    (tmp_path / "README.md").write_text(README, encoding="utf-8")
    return tmp_path


def run(repo: Path, command: str, predictions: Path | None = None) -> int:
    """render/check on the throwaway checkout; predictions: a predictions file (default: the
    checkout's, which does not exist: nothing predicted)."""
    return main([command, "--results", str(repo / "results"), "--readme",
                 str(repo / "README.md"), "--root", str(repo), "--predictions",
                 str(predictions or repo / "predictions.json")])


def block(text: str) -> str:
    return text.split("<!-- matrix:begin -->")[1].split("<!-- matrix:end -->")[0]


def test_fixture_source_hash_is_the_fixtures_fresh_hash(tmp_path):
    assert code_sha256(make_repo(tmp_path)) == FRESH


def test_golden_render(tmp_path):
    repo = make_repo(tmp_path, "valid")
    assert run(repo, "render", FIXTURES / "predictions.json") == 0
    rendered = (repo / "README.md").read_bytes()
    if os.environ.get("MATRIX_UPDATE_GOLDEN"):
        GOLDEN.write_bytes(rendered)
    assert rendered == GOLDEN.read_bytes()


@pytest.mark.parametrize(("model", "column", "cell"), [
    ("gemma-3-1b-it", "CPU", "✅ Runs 📦"),  # real weights (v1 file, hub: source)
    # A quantized (GGUF) v2 pass and an older synthetic pass: both kinds back the ✅.
    ("gemma-3-270m", "CPU", "✅ Runs 🗜️ 🧪"),
    ("gemma-3-4b-it", "CPU", "❌ Fails (logits) 🧪"),  # logits and generate fail: first stage
    ("gemma-3-27b-it", "GPU A100 (1x)",
     "⛔️ Not supported (needs 58.3 GiB &gt; has 39.4 GiB)"),
    ("gemma-3-12b-pt", "GPU A100 (1x)", "❌ Fails (oom) 🧪"),  # the model's process died
    ("gemma-3-4b-pt", "GPU H100 (1x)", "✅ Runs 📦 ⏳"),  # stale: other gemma3/ code
    ("gemma-3-1b-pt", "CPU", "✅ Runs 🧪 ⏳"),  # stale: jax 0.5.3
    ("gemma-3-1b-it", "TPU v5e (1x)", "❔ Needs check"),  # the TPU result is all skipped
    ("gemma-3-1b-pt", "GPU H100 (1x)", "✅ Runs 🧪"),  # newer pass beats older failure
    ("gemma-3-270m-it", "GPU H100 (1x)", "❌ Fails (batch) 🧪"),  # newer failure beats pass
    ("gemma-3-27b-pt", "GPU A100 (1x)", "✅ Runs 📦"),  # older ✅ (80GB) beats newer ⛔️ (40GB)
    ("gemma-3-12b-it", "GPU H200 (1x)", "✅ Runs 🧪"),  # a column beyond the fixed ones
    ("gemma-3-27b-pt", "TPU v2 (8x)", "❔ Needs check"),
])
def test_golden_cells(model, column, cell):
    cells = _table(GOLDEN.read_text(encoding="utf-8"))
    assert cells[model][column] == cell


def test_quantized_evidence_never_reads_as_the_released_weights():
    rows = [line for line in GOLDEN.read_text(encoding="utf-8").splitlines()
            if line.startswith("| gemma-3-270m | CPU |")]
    # The details list each kind of evidence the cell has, the shown (newest) one first.
    assert [row.split(" | ")[2] for row in rows] == ["✅ Runs 🗜️", "✅ Runs 🧪"]
    assert "real, quantized\\: GGUF a5fd3b62230a (F32 ×109, Q5\\_0 ×81" in rows[0]
    assert "9.87 / 9.91" in rows[0] and "0.0121 / 0.0118" in rows[0]
    assert "📦" not in rows[0]


def test_columns_fixed_first_then_new_ones():
    header = next(line for line in GOLDEN.read_text(encoding="utf-8").splitlines()
                  if line.startswith("| Model | Config |"))
    assert header == (
        "| Model | Config | CPU | GPU A100 (1x) | GPU H100 (1x) | GPU A100 (8x) | "
        "GPU H100 (8x) | TPU v2 (8x) | TPU v5e (1x) | GPU H200 (1x) |"
    )


def test_render_twice_gives_the_same_bytes(tmp_path):
    repo = make_repo(tmp_path, "valid")
    assert run(repo, "render") == 0
    first = (repo / "README.md").read_bytes()
    assert run(repo, "render") == 0
    assert (repo / "README.md").read_bytes() == first


def test_render_touches_only_the_block(tmp_path):
    repo = make_repo(tmp_path, "valid")
    run(repo, "render")
    text = (repo / "README.md").read_text(encoding="utf-8")
    before, after = README.split("stale text\n")
    assert text.startswith(before) and text.endswith(after)
    assert "stale text" not in text


def test_no_results_renders_all_needs_check(tmp_path):
    repo = make_repo(tmp_path)
    assert run(repo, "render") == 0
    cells = _table((repo / "README.md").read_text(encoding="utf-8"))
    assert {cell for row in cells.values() for cell in row.values()} == {"❔ Needs check"}
    assert "No cell has evidence yet." in (repo / "README.md").read_text(encoding="utf-8")


def test_check_passes_on_a_fresh_render(tmp_path, capsys):
    repo = make_repo(tmp_path, "valid")
    run(repo, "render")
    capsys.readouterr()
    assert run(repo, "check") == 0
    assert "matches 9 valid result files" in capsys.readouterr().out


def test_check_fails_on_a_hand_edited_readme_with_a_diff(tmp_path, capsys):
    repo = make_repo(tmp_path, "valid")
    run(repo, "render")
    readme = repo / "README.md"
    edited = readme.read_text(encoding="utf-8").replace("❔ Needs check", "✅ Runs", 1)
    readme.write_text(edited, encoding="utf-8")
    capsys.readouterr()
    assert run(repo, "check") == 1
    out = capsys.readouterr()
    assert "--- " in out.out and "+++ " in out.out
    assert re.search(r"^-\|.*✅ Runs", out.out, re.MULTILINE)
    assert "differs from what results/ renders to" in out.err
    assert readme.read_text(encoding="utf-8") == edited  # check never writes


def test_check_fails_when_the_code_changes(tmp_path, capsys):
    repo = make_repo(tmp_path, "valid")
    run(repo, "render")
    (repo / "gemma3" / "nn" / "model.py").write_text("# new model code\n")
    assert run(repo, "check") == 1
    assert "+| gemma-3-270m | CPU | ✅ Runs 🧪 ⏳ |" in capsys.readouterr().out


def test_invalid_files_are_left_out_and_fail_check(tmp_path, capsys):
    clean = make_repo(tmp_path / "clean", "valid")
    run(clean, "render")
    repo = make_repo(tmp_path / "mixed", "valid", "invalid")
    assert run(repo, "render") == 1
    assert block((repo / "README.md").read_text("utf-8")) == block(
        (clean / "README.md").read_text("utf-8"))
    capsys.readouterr()
    assert run(repo, "check") == 1
    err = capsys.readouterr().err
    assert "device fingerprint disagrees" in err
    assert "truncated" in err
    assert "3 problems in result files" in err


def test_untrusted_strings_cannot_change_the_table(tmp_path):
    repo = make_repo(tmp_path, "valid", "injection")
    assert run(repo, "render") == 0
    text = block((repo / "README.md").read_text(encoding="utf-8"))
    for raw in ("<script", "<img", "](http://x)", "](http://evil)", "`x`", "*b*"):
        assert raw not in text
    assert "&lt;script&gt;" in text and "\\[link\\]" in text
    tables = [line for line in text.splitlines() if line.startswith("|")]
    # Every table row still has exactly its header's number of cell separators.
    main_rows = [line for line in tables if "✅ Supported" in line or "| **" in line]
    assert len(main_rows) == 12
    assert {_separators(line) for line in main_rows} == {_separators(tables[0])}
    detail_rows = tables[tables.index(next(t for t in tables if t.startswith("| Model | Hard"))):]
    assert len({_separators(line) for line in detail_rows}) == 1
    cells = _table(text)
    assert cells["gemma-3-12b-pt"]["GPU H100 (1x)"].startswith(
        "⛔️ Not supported (needs 1 GiB &gt; has 0 GiB \\| &lt;img src=x onerror=alert(1)&gt; "
        "\\[x\\](http\\://evil) \\@a \\| forged \\| row \\|)")


def test_missing_markers_is_an_error_and_writes_nothing(tmp_path, capsys):
    repo = make_repo(tmp_path, "valid")
    (repo / "README.md").write_text("# No markers here\n", encoding="utf-8")
    assert run(repo, "render") == 1
    assert "<!-- matrix:begin -->" in capsys.readouterr().err
    assert (repo / "README.md").read_text(encoding="utf-8") == "# No markers here\n"


def test_missing_gemma3_sources_is_an_error(tmp_path, capsys):
    repo = make_repo(tmp_path, "valid")
    shutil.rmtree(repo / "gemma3")
    assert run(repo, "check") == 1
    assert "pass --root" in capsys.readouterr().err


def _separators(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def _table(text: str) -> dict[str, dict[str, str]]:
    """{model id: {column: cell}} from the main table of a rendered block."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split(" | ")]
    rows = {}
    for line in lines:
        match = re.match(r"\| \[([a-z0-9.-]+)\]\(https://huggingface\.co/", line)
        if match:
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))]
            rows[match[1]] = dict(zip(header[2:], cells[2:], strict=True))
    return rows


def test_real_weights_without_the_real_text_check_prove_nothing(tmp_path):
    import json

    repo = make_repo(tmp_path, "valid")
    path = repo / "results" / "20261126T100000Z-cpu-cpu-1x.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["tests"] = [t for t in data["tests"] if t["metadata"]["check"] != "realtext"]
    data["summary"].update(passed=len(data["tests"]), total=len(data["tests"]),
                           collected=len(data["tests"]))
    path.write_text(json.dumps(data), encoding="utf-8")
    assert run(repo, "render") == 0
    cells = _table((repo / "README.md").read_text(encoding="utf-8"))
    assert cells["gemma-3-270m"]["CPU"] == "✅ Runs 🧪"  # only the synthetic evidence counts


def test_predictions_fill_only_cells_no_result_speaks_about(tmp_path):
    repo = make_repo(tmp_path, "valid")
    run(repo, "render", FIXTURES / "predictions.json")
    cells = _table((repo / "README.md").read_text(encoding="utf-8"))
    assert cells["gemma-3-27b-it"]["TPU v5e (1x)"] == (
        "⛔️ predicted: needs 54.1 GiB &gt; 16.0 GiB per chip")
    assert cells["gemma-3-27b-it"]["GPU A100 (8x)"] == (
        "❔ Needs check (predicted 8.4 of 30.0 GiB per GPU)")
    assert cells["gemma-3-12b-it"]["GPU A100 (1x)"] == (
        "❔ Needs check (tight: 27.9 of 30.0 GiB per GPU)")
    # A result outranks a prediction, however sure the prediction is.
    assert cells["gemma-3-270m-it"]["GPU H100 (1x)"].startswith("❌ Fails (batch)")
    details = (repo / "README.md").read_text(encoding="utf-8").split("<details>")[1]
    assert "predicted" not in details  # never shown as evidence
    assert all(not row["CPU"].startswith(("⛔️ predicted", "❔ Needs check ("))
               for row in cells.values())
