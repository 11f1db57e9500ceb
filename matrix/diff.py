"""What a set of added result files changes in the matrix: every cell whose text differs between
the results without them and with them, with the evidence that decides the new text. Markdown,
for a pull request's job summary and the end of `nox -s matrix`."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from contract.checks import CELL_DTYPE

from .escape import md
from .merge import Cell
from .status import NOT_SUPPORTED, Evidence, tests_by_model

ABSENT = "(no column)"


@dataclass(frozen=True)
class Change:
    model: str
    column: str
    before: str
    after: str
    deciding: Evidence | None


def changes(before: dict[tuple[str, str], Cell], after: dict[tuple[str, str], Cell],
            columns_before: set[str], models: list[str]) -> list[Change]:
    """The cells whose text differs, in registry order, then column order of appearance."""
    found = []
    keys = sorted(set(before) | set(after),
                  key=lambda k: (models.index(k[0]) if k[0] in models else len(models), k[1]))
    for model, column in keys:
        old, new = before.get((model, column)), after.get((model, column))
        old_text = (str(old.text()) if old else "❔ Needs check") if column in columns_before \
            else ABSENT
        new_text = str(new.text()) if new else "❔ Needs check"
        if old_text != new_text:
            found.append(Change(model, column, old_text, new_text, new.shown if new else None))
    return found


def markdown(found: list[Change], added: list[str], base: str, unchanged: int) -> str:
    if not added:
        return f"No result files were added since {md(base)}: no cell changes.\n"
    head = (f"### What the {len(added)} result file(s) added since {md(base)} change\n\n"
            + "".join(f"- `{md(name)}`\n" for name in added) + "\n")
    if not found:
        return head + f"No cell changes ({unchanged} cells with evidence unchanged).\n"
    lines = ["| Model | Column | Before | After | Deciding evidence |",
             "| :--- | :--- | :--- | :--- | :--- |"]
    lines += [f"| {md(c.model)} | {md(c.column)} | {c.before} | {c.after} | "
              f"{_evidence(c.deciding)} |" for c in found]
    return head + "\n".join(lines) + f"\n\n{unchanged} cells with evidence unchanged.\n"


def _evidence(item: Evidence | None) -> str:
    """File, status, parity margin (bf16 logits), memory (measured / predicted peak)."""
    if item is None:
        return "—"
    parts = [f"`{md(item.result.path.name)}`"]
    if item.kind == NOT_SUPPORTED:
        return parts[0] + f": {md(item.detail)}"
    measured = {node.check: (test.get("metadata") or {}).get("measurements", {})
                for node, test in tests_by_model(item.result.data["tests"]).get(item.model, [])
                if node.dtype == CELL_DTYPE}
    logits, memory = measured.get("logits", {}), measured.get("memory", {})
    if logits.get("max_abs_diff") is not None:
        rel = logits.get("max_abs_rel")
        parts.append(f"logits max abs diff {logits['max_abs_diff']:.3g}"
                     + (f" ({rel:.2e} of the scale)" if rel is not None else "")
                     + (f", top-1 {logits['top1_agreement']:.3f}"
                        if logits.get("top1_agreement") is not None else ""))
    if memory.get("measured_peak_bytes") and memory.get("predicted_peak_bytes"):
        parts.append(f"memory {memory['measured_peak_bytes'] / 2**30:.2f} / "
                     f"{memory['predicted_peak_bytes'] / 2**30:.2f} GiB predicted")
    return "; ".join(parts)


def added_since(base: str, results_dir: Path) -> list[Path]:
    """Result files in results_dir that `base` does not have (or has with other content), and
    those git does not track yet."""
    listed = _git("diff", "--name-only", "--diff-filter=AM", base, "--", str(results_dir))
    untracked = _git("ls-files", "--others", "--exclude-standard", "--", str(results_dir))
    root = Path(_git("rev-parse", "--show-toplevel").strip())
    names = {line for line in (listed + untracked).splitlines() if line.endswith(".json")}
    return sorted(root / name for name in names)


def default_base() -> str:
    """The merge base with main (origin/main on a CI checkout), else HEAD."""
    for ref in ("main", "origin/main"):
        try:
            return _git("merge-base", "HEAD", ref).strip()
        except RuntimeError:
            continue
    return "HEAD"


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
