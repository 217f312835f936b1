"""The layout is a contract: layers import one way, no cycles, no private names
across modules, and no import of the package hidden inside a function."""

import ast
import importlib
import sys
from pathlib import Path

import pytest

import feasibility

PACKAGE = Path(feasibility.__file__).parent
#: a module may import from its own layer and the layers before it
LAYERS = ["core", "solvers", "capacity", "science", "tools", "cli"]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path):
    """(imported module, imported names, inside a function?) for each import of the package."""
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("feasibility"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                target = full if full in MODULES else node.module
                yield target, alias.name if target == node.module else None, id(node) in nested
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("feasibility"):
                    yield alias.name, None, id(node) in nested


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def graph() -> dict[str, set[str]]:
    return {name: {target for target, _, _ in imports_of(path) if target != name}
            for name, path in MODULES.items()}


def test_every_module_sits_in_a_layer():
    loose = [m for m in MODULES if m != "feasibility" and layer(m) < 0]
    assert loose == []


def test_layers_import_one_way():
    upward = [(m, t) for m, targets in graph().items() for t in targets
              if m != "feasibility" and layer(t) > layer(m)
              and not (t == f"feasibility.{m.split('.')[1]}")]
    assert upward == []


def test_no_import_cycle():
    edges = graph()
    # the top-level package re-exports the API: it is the root, not a member of a cycle
    edges = {m: {t for t in ts if t != "feasibility"} for m, ts in edges.items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node, stack):
        state[node] = 1
        for target in edges.get(node, ()):
            if state.get(target) == 1:
                cycle.extend(stack[stack.index(target):] + [target])
                return True
            if state.get(target) is None and visit(target, stack + [target]):
                return True
        state[node] = 2
        return False

    for module in edges:
        if state.get(module) is None and visit(module, [module]):
            break
    assert cycle == []


def test_no_private_name_imported_from_another_module():
    private = [(m, t, n) for m, p in MODULES.items() for t, n, _ in imports_of(p)
               if n and n.startswith("_") and t != m]
    assert private == []


def test_no_import_of_the_package_inside_a_function():
    hidden = [(m, t) for m, p in MODULES.items() for t, _, inside in imports_of(p) if inside]
    assert hidden == []


def test_the_checker_needs_no_solver():
    core = [(m, t) for m, p in MODULES.items() if layer(m) == 0
            for t in p.read_text().split() if t in ("cvxpy", "cvxpy.")]
    assert core == []


@pytest.mark.parametrize("old", sorted(feasibility.MOVED_MODULES))
def test_old_module_names_still_import_with_a_warning(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=feasibility.MOVED_MODULES[old]):
        module = importlib.import_module(old)
    assert module is importlib.import_module(feasibility.MOVED_MODULES[old])
