"""The package's shape, checked from its source with ``ast`` (nothing is imported): no import cycles, the low
floors of docs/architecture stay free of Ultralytics and of the layers above them, and functions and files stay
short enough to read.

Imports are collected everywhere in a module, inside functions too: a lazy import is still a dependency, and a
cycle closed through one is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "yolo_gd"
ROOT = PACKAGE.parent

MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 400

# Files still over a limit, each with the reason; the list may only shrink.
SIZE_EXEMPT_DIRS: tuple[str, ...] = ()
SIZE_EXEMPT_FILES: frozenset[str] = frozenset()

# docs/architecture.md: floors 0-1 import neither Ultralytics (at module level) nor anything above them
LOW_FLOORS = ("yolo_gd/optim/", "yolo_gd/telemetry/norms.py", "yolo_gd/datasets/", "yolo_gd/errors.py",
              "yolo_gd/plotting.py")
UPPER_LAYERS = ("yolo_gd.inject", "yolo_gd.ablate", "yolo_gd.report", "yolo_gd.cli", "yolo_gd.training",
                "yolo_gd.qat")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Import:
    target: str  # the module imported, e.g. 'yolo_gd.optim.registry' or 'ultralytics.nn.tasks'
    line: int
    in_function: bool


def _imports(name: str, path: Path) -> Iterator[Import]:
    """Every import in the module, with where it is.

    ``import a.b`` imports ``a.b``. ``from a import b`` imports ``a`` (the statement reads ``a``'s namespace, which
    may still be initialising) and also ``a.b`` when that is a module of the package. Relative imports are
    resolved against the module's package.
    """
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(alias.name, child.lineno, in_function)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(child.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                yield Import(base, child.lineno, in_function)
                for alias in child.names:
                    if f"{base}.{alias.name}" in MODULES:
                        yield Import(f"{base}.{alias.name}", child.lineno, in_function)
            yield from visit(child, inside)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")), False)


def _dependencies(name: str, path: Path) -> set[str]:
    """The package's modules ``name`` depends on.

    One kind of edge is left out: a function importing one of the module's own parent packages (``import
    yolo_gd`` to read ``__version__`` or ``__file__``). Python initialises a package before any of its
    submodules, so by the time such a function runs its parents are complete: the import only reads attributes,
    it can neither run code nor meet a half-initialised module. At module level the same import is kept: that is
    where a package and its submodule can meet half-initialised.
    """
    deps = set()
    for imp in _imports(name, path):
        if imp.target not in MODULES or imp.target == name:
            continue
        if imp.in_function and name.startswith(imp.target + "."):
            continue
        deps.add(imp.target)
    return deps


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_checker_sees_a_cycle():
    """The cycle finder itself: a -> b -> c -> a is found, a DAG is clean."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles():
    graph = {name: _dependencies(name, path) for name, path in MODULES.items()}
    assert sum(map(len, graph.values())) > 100, "the import scan found almost nothing: is the parser broken?"
    cycles = _cycles(graph)
    assert not cycles, "import cycles (each group imports itself through the others): " + "; ".join(
        " <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("path", [p for p in MODULES.values() if _rel(p).startswith(LOW_FLOORS)], ids=_rel)
def test_low_floors_import_neither_ultralytics_nor_upper_layers(path):
    bad = []
    for imp in _imports(_module_name(path), path):
        top = imp.target.split(".")[0]
        if top == "ultralytics" and not imp.in_function:
            bad.append(f"line {imp.line}: imports {imp.target} at module level")
        if any(imp.target == upper or imp.target.startswith(upper + ".") for upper in UPPER_LAYERS):
            bad.append(f"line {imp.line}: imports {imp.target} (an upper layer)")
    assert not bad, f"{_rel(path)}: " + "; ".join(bad)


def _size_exempt(rel: str) -> bool:
    return rel in SIZE_EXEMPT_FILES or rel.startswith(SIZE_EXEMPT_DIRS)


@pytest.mark.parametrize("path", [p for p in MODULES.values() if not _size_exempt(_rel(p))], ids=_rel)
def test_functions_and_files_are_short(path):
    text = path.read_text(encoding="utf-8")
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_rel(path)}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"
    n = len(text.splitlines())
    assert n <= MAX_FILE_LINES, f"{_rel(path)} has {n} lines (at most {MAX_FILE_LINES}): split it by concern"


def test_the_size_exemptions_name_existing_files():
    for rel in SIZE_EXEMPT_FILES:
        assert (ROOT / rel).is_file(), f"{rel} is exempt but does not exist: drop it from SIZE_EXEMPT_FILES"
