"""The import graph of the four packages, read with `ast` and held to the layers of
docs/architecture.md: no import circle between files, every import between rooms in an allowed
direction, no private name imported from another file, and the packages that must stay light
(contract/, matrix/, the files the noxfile reads by path) importing only what they may.

Imports inside functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contract", "gemma3", "harness", "matrix")

# Which package may import which: harness drives gemma3; the reporter and the harness share the
# contract; gemma3 knows none of the others.
PACKAGE_ARROWS = {
    "contract": set(),
    "gemma3": set(),
    "matrix": {"contract"},
    "harness": {"contract", "gemma3"},
}
# Within a package: the rooms each room may import, bottom to top (docs/architecture.md). A
# package's own top (its __init__ and __main__) is the room named like the package.
ROOM_ARROWS = {
    "gemma3.config": set(),
    "gemma3.runtime": {"gemma3.config"},
    "gemma3.nn": {"gemma3.config", "gemma3.runtime"},
    "gemma3.ckpt": {"gemma3.config", "gemma3.runtime", "gemma3.nn"},
    "gemma3.generation": {"gemma3.config", "gemma3.runtime", "gemma3.nn"},
    "gemma3.inputs": {"gemma3.config", "gemma3.ckpt"},
    "gemma3.cli": {"gemma3.config", "gemma3.runtime", "gemma3.ckpt", "gemma3.generation",
                   "gemma3.inputs"},
    "gemma3": {"gemma3.cli"},
    "harness.system": set(),
    "harness.checkpoints": {"harness.system"},
    "harness.parity": set(),
    "harness.memory": {"harness.parity", "harness.checkpoints"},
    "harness.reference": {"harness.system", "harness.checkpoints", "harness.parity"},
    "harness.checks": {"harness.checkpoints", "harness.parity", "harness.memory",
                       "harness.reference"},
    "harness.run": {"harness.system", "harness.checkpoints", "harness.parity", "harness.memory",
                    "harness.reference"},
    "harness.bench": {"harness.system", "harness.checkpoints", "harness.memory"},
    "harness": {"harness.run", "harness.system"},
    "matrix": set(),
    "contract": set(),
}
# Third-party packages a light package may import (besides the standard library and its arrows).
LIGHT = {
    "contract": set(),
    "matrix": {"jinja2", "jsonschema"},
    "harness.system.accelerator": set(),  # the noxfile loads these two by path, before any
    "harness.system.environment": set(),  # environment has the project's dependencies
}
NEVER = {"gemma3": {"torch", "transformers", "harness", "matrix", "contract"}}


def module_files() -> dict[str, Path]:
    """{dotted module name: file} of every module of the packages."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names imported from it, line) for every import statement of a file,
    relative imports resolved."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            out.append((base, [alias.name for alias in node.names], node.lineno))
    return out


def resolve(target: str, names: list[str], modules: dict[str, Path]) -> list[str]:
    """The in-repo modules an import reaches: `from a.b import c` is a.b.c when that is a
    module, else a.b."""
    reached = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
    if len(reached) < len(names) or not names:
        found = target
        while found and found not in modules:
            found = found.rpartition(".")[0]
        if found:
            reached.append(found)
    return reached


def edges() -> dict[str, set[str]]:
    modules = module_files()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, names, _ in imports(name, path):
            graph[name] |= {m for m in resolve(target, names, modules) if m != name}
    return graph


def room(module: str) -> str:
    """gemma3.nn.model -> gemma3.nn; gemma3.__main__ -> gemma3; matrix.load -> matrix."""
    package, _, rest = module.partition(".")
    if package in ("matrix", "contract") or not rest:
        return package
    first = rest.split(".")[0]
    return package if first == "__main__" else f"{package}.{first}"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), or self-loops."""
    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_between_files():
    assert cycles(edges()) == []


def test_the_room_table_is_a_layering():
    """The allowed arrows themselves form no circle, so "above" and "below" mean something."""
    graph = {r: set(allowed) for r, allowed in ROOM_ARROWS.items()}
    graph.update({f"package:{p}": {f"package:{q}" for q in arrows}
                  for p, arrows in PACKAGE_ARROWS.items()})
    assert cycles(graph) == []


def test_every_room_is_in_the_table():
    rooms = {room(m) for m in module_files()}
    assert rooms == set(ROOM_ARROWS), "add the new room to ROOM_ARROWS and docs/architecture.md"


def test_imports_point_one_way():
    wrong = []
    for module, targets in edges().items():
        for target in targets:
            a, b = room(module), room(target)
            pa, pb = a.split(".")[0], b.split(".")[0]
            allowed = (b in ROOM_ARROWS[a] | {a}) if pa == pb else (pb in PACKAGE_ARROWS[pa])
            if not allowed:
                wrong.append(f"{module} imports {target} ({a} -> {b})")
    assert wrong == []


def test_no_private_name_crosses_files():
    modules = module_files()
    wrong = []
    for name, path in modules.items():
        for target, names, line in imports(name, path):
            if target.split(".")[0] in PACKAGES and target != name:
                wrong += [f"{path.relative_to(ROOT)}:{line} imports {n} from {target}"
                          for n in names if n.startswith("_") and not n.startswith("__")]
    assert wrong == []


@pytest.mark.parametrize("prefix", sorted(LIGHT))
def test_light_modules_import_little(prefix):
    """contract/ is standard library only; matrix/ adds jinja2 and jsonschema (no jax, no
    torch, no gemma3); the noxfile's files are standard library only."""
    modules = module_files()
    allowed = LIGHT[prefix] | set(PACKAGE_ARROWS.get(prefix, ())) | {prefix.split(".")[0]}
    wrong = []
    for name, path in modules.items():
        if name != prefix and not name.startswith(prefix + "."):
            continue
        for target, _, line in imports(name, path):
            top = target.split(".")[0]
            if top and top not in sys.stdlib_module_names and top not in allowed:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert wrong == []


def test_gemma3_never_imports_the_reference_or_the_harness():
    wrong = []
    for name, path in module_files().items():
        if name.split(".")[0] not in NEVER:
            continue
        for target, _, line in imports(name, path):
            if target.split(".")[0] in NEVER[name.split(".")[0]]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert wrong == []
