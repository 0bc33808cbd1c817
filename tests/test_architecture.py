"""The package's import structure: data flows one way (models -> cost -> measure -> guidelines -> the
packages built on them -> cli), nothing outside ``cli`` imports ``cli``, and no module imports itself
back through others, deferred imports inside functions included (they hide cycles, not remove them).

Imports under ``if TYPE_CHECKING:`` are left out: they exist only for type checkers.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "shufflenet"

# Lower number = lower layer; a module may import its own layer and the layers below it.
LAYERS: dict[str, int] = {
    "errors": 0, "_io": 0, "result": 0, "environment": 0, "render": 0,
    "models": 1,
    "cost": 2,
    "measure": 3,
    "guidelines": 4,
    "audit": 5, "train": 5, "deploy": 5,
    "report": 6,
    "cli": 7,
}
TOP = {"__init__"}  # the public API re-exports every layer


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str, modules: set[str] | None = None) -> set[str]:
    """The package's modules ``path`` imports. ``from pkg import sub`` names only ``pkg.sub`` when ``sub``
    is one of ``modules`` (the package itself is then just the way to it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != PACKAGE:
                continue
            subs = [f"{name}.{a.name}" for a in node.names]
            if modules is None or not all(sub in modules for sub in subs):
                found.add(name)
            found.update(subs)  # `from shufflenet.x import y` may name a submodule y
    return found


def _graph() -> dict[str, set[str]]:
    files = {(_module_name(p)): p for p in (SRC / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        graph[mod] = {m for m in _imports(path, mod, set(files)) if m in files and m != mod}
    return graph


def _layer(module: str) -> tuple[str, int | None]:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__", None
    return parts[1], LAYERS.get(parts[1])


def test_every_subpackage_has_a_layer():
    unknown = sorted({_layer(m)[0] for m in _graph()} - set(LAYERS) - TOP)
    assert not unknown, f"add these to LAYERS (and to ARCHITECTURE.md's data flow): {unknown}"


def test_no_upward_import():
    bad = []
    for mod, deps in _graph().items():
        name, layer = _layer(mod)
        if name in TOP or layer is None:
            continue
        for dep in deps:
            dname, dlayer = _layer(dep)
            if dname in TOP:
                bad.append(f"{mod} imports the package root {dep} (import the module that defines it)")
            elif dlayer is not None and dlayer > layer:
                bad.append(f"{mod} ({name}, layer {layer}) imports {dep} ({dname}, layer {dlayer})")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_nothing_outside_cli_imports_cli():
    bad = [f"{m} -> {d}" for m, deps in _graph().items() for d in deps
           if d.startswith(f"{PACKAGE}.cli") and not m.startswith(f"{PACKAGE}.cli") and m != PACKAGE]
    assert not bad, bad


def test_no_import_cycle():
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a cycle of theirs
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_deferred_and_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE / "measure"
    pkg.mkdir(parents=True)
    f = pkg / "x.py"
    f.write_text("from typing import TYPE_CHECKING\n"
                 "if TYPE_CHECKING:\n    from shufflenet.cli import main\n"
                 "def g():\n    from shufflenet.cli._common import emit\n"
                 "from . import y\n")
    found = _imports(f, "shufflenet.measure.x")
    assert "shufflenet.cli._common" in found and "shufflenet.measure.y" in found
    assert "shufflenet.cli" not in found  # the TYPE_CHECKING one


def test_the_checker_tells_a_submodule_from_the_package_root(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("from shufflenet import result\n")
    assert _imports(f, "shufflenet.cost.m", {"shufflenet", "shufflenet.result"}) == {"shufflenet.result"}
    f.write_text("from shufflenet import create_model\n")
    assert "shufflenet" in _imports(f, "shufflenet.cost.m", {"shufflenet", "shufflenet.result"})


def test_benchmarks_use_only_the_public_api():
    bench = SRC.parent / "benchmarks"
    bad = []
    for path in sorted(bench.glob("*.py")):
        for dep in _imports(path, f"benchmarks.{path.stem}"):
            if dep.startswith((f"{PACKAGE}.cli", f"{PACKAGE}._io")):
                bad.append(f"{path.name} imports {dep}")
    assert not bad, bad


def test_no_caller_imports_the_private_registry():
    bad = [f"{m} -> {d}" for m, deps in _graph().items() for d in deps
           if d == f"{PACKAGE}.models._registry" and not m.startswith(f"{PACKAGE}.models")]
    assert not bad, f"resolve names with shufflenet.models.get_entry instead: {bad}"
