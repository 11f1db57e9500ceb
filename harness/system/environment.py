"""The packages `python -m harness` needs, checked before any of them is imported, so a machine
with the accelerator stack preinstalled and no network (jax, torch, transformers, but no
psutil or pytest-json-report) hears about everything missing in one message, not one
ImportError at a time.

Standard library only. `nox -s wheelhouse` downloads WHEELHOUSE (the packages beyond such a
stack) on a networked machine, for `pip install --no-index --find-links wheelhouse`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Package:
    module: str  # what the harness imports
    requirement: str  # what pip installs (the same bound as pyproject.toml's extras)

    @property
    def name(self) -> str:
        return re.split(r"[<>=!~;\[ ]", self.requirement, maxsplit=1)[0]


# What accelerator machines ship preinstalled (and the project's own dependencies).
STACK = tuple(Package(m, r) for m, r in (
    ("jax", "jax"), ("flax", "flax"), ("numpy", "numpy"), ("ml_dtypes", "ml_dtypes"),
    ("torch", "torch"), ("transformers", "transformers"), ("tokenizers", "tokenizers"),
    ("huggingface_hub", "huggingface_hub")))
# Beyond the stack: the run itself (pytest runs the checks and writes the result file) ...
HARNESS = (Package("pytest", "pytest>=8"), Package("pytest_jsonreport", "pytest-json-report>=1.5"),
           Package("psutil", "psutil>=5.9"))
# ... and the contributing steps after it (`python -m matrix validate|render`).
MATRIX = (Package("jinja2", "jinja2>=3.1"), Package("jsonschema", "jsonschema>=4.20"))
WHEELHOUSE = HARNESS + MATRIX
OFFLINE_INSTALL = "pip install --no-index --find-links wheelhouse -r wheelhouse/requirements.txt"

Finder = Callable[[str], object]


def wheelhouse_args(folder: str | Path) -> list[str]:
    """`pip download` arguments that fetch WHEELHOUSE and its dependencies into folder."""
    return ["download", "--dest", str(folder), *(p.requirement for p in WHEELHOUSE)]


def write_requirements(folder: str | Path) -> Path:
    """folder/requirements.txt, for `pip install --no-index --find-links folder -r ...`."""
    path = Path(folder) / "requirements.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{p.requirement}\n" for p in WHEELHOUSE))
    return path


def _present(module: str, find: Finder) -> bool:
    try:
        return find(module) is not None
    except (ImportError, ValueError):  # a broken install counts as missing
        return False


def missing(packages, find: Finder = importlib.util.find_spec) -> list[Package]:
    return [p for p in packages if not _present(p.module, find)]


def problems(find: Finder = importlib.util.find_spec,
             install: Callable[[], str] = lambda: 'pip install -e ".[harness]"',
             ) -> tuple[str | None, str | None]:
    """(error, warning): the error when the run cannot start, the warning when only the
    contributing steps' packages are missing. install() gives the networked install command."""
    run = missing(STACK + HARNESS, find)
    later = missing(MATRIX, find)
    if not run and not later:
        return None, None
    names = ", ".join(p.name for p in run + later)
    stack = [p.name for p in run if p in STACK]
    how = (f"With network: {install()}. Offline: run `nox -s wheelhouse` on a networked machine, "
           f"copy the wheelhouse/ folder here, then {OFFLINE_INSTALL}")
    if stack:
        how += (f" (the wheelhouse holds no {', '.join(stack)}: install those from the "
                f"machine's own stack)")
    if run:
        return f"python -m harness needs packages this environment lacks: {names}. {how}.", None
    return None, (f"the harness will run, but `python -m matrix validate|render` (the "
                  f"contributing steps) needs {names}. {how}.")


def require_packages(find: Finder = importlib.util.find_spec) -> None:
    """Exits with status 2 and one message when a package the run needs is missing."""
    error, warning = problems(find, _install_command)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)


def _install_command() -> str:
    from harness.system import accelerator

    try:
        return accelerator.install_command(accelerator.detect().kind)
    except accelerator.BadOverride:  # the fingerprint reports it
        return accelerator.install_command("cpu")
