"""Command line: `python -m matrix validate|render|check` (see docs/result-format.md)."""

import argparse
import sys
from pathlib import Path

from contract.code_hash import code_sha256
from contract.registry import load_registry

from . import diff as cell_diff
from .load import ResultsDirError, list_result_files
from .pipeline import build_block, build_cells, load_valid
from .predictions import DEFAULT_FILE, PredictionsError, load_predictions
from .readme import MarkerError, splice, unified_diff


def main(argv: list[str] | None = None) -> int:
    """Run one command; 0 when all is well, 1 on problems (printed to stderr), 2 on usage."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (MarkerError, FileNotFoundError, ResultsDirError, ReadmeError, DiffError,
            PredictionsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def validate(args) -> int:
    files = args.files or list_result_files(args.results)
    if not files:
        print(f"no result files to validate in {args.results}/")
        return 0
    results, problems = load_valid([(path, str(path)) for path in files], load_registry())
    _report(problems)
    print(f"{len(results)} of {len(files)} result files valid")
    return 1 if problems else 0


def render(args) -> int:
    current, expected, problems, count = _expected_readme(args)
    if expected != current:
        args.readme.write_bytes(expected.encode("utf-8"))
        print(f"wrote the matrix into {args.readme} from {count} valid result files")
    else:
        print(f"{args.readme} is already up to date ({count} valid result files)")
    if problems:
        print(f"the {len(problems)} problems above kept files out of the matrix",
              file=sys.stderr)
    return 1 if problems else 0


def check(args) -> int:
    current, expected, problems, count = _expected_readme(args)
    if expected != current:
        sys.stdout.write(unified_diff(current, expected, str(args.readme)))
        print(f"{args.readme} differs from what results/ renders to: run "
              "`python -m matrix render` and commit the README", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problems in result files: fix or remove those files",
              file=sys.stderr)
    if expected == current and not problems:
        print(f"{args.readme} matches {count} valid result files")
        return 0
    return 1


class ReadmeError(ValueError):
    """The README cannot be read as the UTF-8 text the matrix block is spliced into."""


class DiffError(RuntimeError):
    """The base revision of `diff` cannot be resolved (no git checkout, unknown revision)."""


def diff(args) -> int:
    """Markdown: every cell the result files added since the base change (exit 1 only when a
    result file is invalid)."""
    registry = load_registry()
    try:
        base = args.base or cell_diff.default_base()
        added = args.added if args.added is not None else cell_diff.added_since(base, args.results)
    except RuntimeError as exc:
        raise DiffError(f"diff: {exc}; pass --base REV, or --added FILE ... outside git") from None
    added_names = {Path(p).resolve() for p in added}
    files = [(path, str(path)) for path in list_result_files(args.results)]
    results, problems = load_valid(files, registry)
    _report(problems)
    code_hash = code_sha256(args.root)
    before, columns_before = build_cells(
        [r for r in results if r.path.resolve() not in added_names], registry, code_hash)
    after, _ = build_cells(results, registry, code_hash)
    found = cell_diff.changes(before, after, columns_before, [m.id for m in registry])
    unchanged = len(set(before) & set(after)) - sum(
        1 for c in found if (c.model, c.column) in before)
    sys.stdout.write(cell_diff.markdown(found, sorted(Path(p).name for p in added),
                                        args.base or "the merge base with main", unchanged))
    return 1 if problems else 0


def _expected_readme(args) -> tuple[str, str, list, int]:
    """(README now, README as the results render it, problems, number of valid results)."""
    if not args.readme.is_file():
        raise FileNotFoundError(f"{args.readme} not found; pass --readme PATH")
    raw = args.readme.read_bytes()
    try:
        current = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReadmeError(f"{args.readme} is not UTF-8 text (byte {exc.start}: "
                          f"{raw[exc.start:exc.start + 1]!r}); the README must be UTF-8 for the "
                          "matrix to be written into it") from None
    files = [(path, str(path)) for path in list_result_files(args.results)]
    registry = load_registry()
    results, problems = load_valid(files, registry)
    _report(problems)
    block = build_block(results, registry, args.root, args.readme.parent,
                        load_predictions(args.predictions))
    return current, splice(current, block, str(args.readme)), problems, len(results)


def _report(problems) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m matrix",
        description="Validate result files and render the README support matrix.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    v = commands.add_parser("validate", help="check result files; exit 1 on any problem")
    v.add_argument("files", nargs="*", type=Path, help="result files (default: all in --results)")
    v.add_argument("--results", type=Path, default=Path("results"), help="default: results/")
    v.set_defaults(run=validate)
    for name, run, text in (
        ("render", render, "write the matrix between the README markers"),
        ("check", check, "exit 1 if a result file is invalid or the README is not current"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--results", type=Path, default=Path("results"),
                         help="directory of result files (default: results/)")
        sub.add_argument("--readme", type=Path, default=Path("README.md"),
                         help="README with the matrix markers (default: README.md)")
        sub.add_argument("--root", type=Path, default=Path("."),
                         help="repository root whose gemma3/ sources are hashed (default: cwd)")
        sub.add_argument("--predictions", type=Path, default=DEFAULT_FILE,
                         help="the planner's predicted cells (default: contract/predictions.json;"
                              " a missing file predicts nothing)")
        sub.set_defaults(run=run)
    d = commands.add_parser("diff", help="print (Markdown) every cell the added result files "
                                         "change, before -> after, with the deciding evidence")
    d.add_argument("--base", default=None,
                   help="the revision to compare with (default: the merge base with main)")
    d.add_argument("--added", nargs="*", type=Path, default=None,
                   help="the added result files (default: those git shows since --base, "
                        "untracked ones included)")
    d.add_argument("--results", type=Path, default=Path("results"))
    d.add_argument("--root", type=Path, default=Path("."),
                   help="repository root whose model code is hashed (default: cwd)")
    d.set_defaults(run=diff)
    return parser


if __name__ == "__main__":
    sys.exit(main())
