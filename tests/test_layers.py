"""The package's layers, read from the source: every import of a failfirst module
points down (or sideways, inside one package), and no imports run in a circle.
``failfirst.LAYERS`` names the order."""

from __future__ import annotations

import ast
from pathlib import Path

import failfirst

SRC = Path(failfirst.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, module: str, *, top_level_only: bool) -> set[str]:
    """failfirst modules imported (``from failfirst.x import y`` counts x.y when y is a
    module, else x). Imports under ``if TYPE_CHECKING:`` are annotations, not arrows;
    ``top_level_only`` leaves out imports inside functions (they run later, so they
    cannot make an import cycle)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if top_level_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("failfirst."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "failfirst" or node.module.startswith("failfirst."):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    found.add(candidate if _exists(candidate) else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found - {module}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8")) for p in sorted(SRC.rglob("*.py"))}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return failfirst.LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in failfirst.LAYERS else None


def test_every_module_belongs_to_a_layer():
    loose = [m for m in _modules() if m != "failfirst" and _layer(m) is None]
    assert loose == [], f"modules outside the layers of failfirst.LAYERS: {loose}"


def test_no_import_points_to_a_higher_layer():
    upward = []
    for module, tree in _modules().items():
        own = _layer(module)
        for target in _imports(tree, module, top_level_only=False):
            theirs = _layer(target)
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{module} -> {target}")
    assert upward == [], "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_cycles():
    """Not even through an import inside a function: a circle is a design knot (store/url
    and store/postgresql once imported each other) even when it happens to import."""
    graph = {m: _imports(t, m, top_level_only=False) for m, t in _modules().items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == [], "module-level import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_book_tooling_is_not_in_the_library():
    """Plotting and Sphinx code live in failfirst_book (book/_tools), not in failfirst."""
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in {"matplotlib", "sphinx", "docutils", "myst_nb"}
                               for n in names), f"{module} imports {names}"
