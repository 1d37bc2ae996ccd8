"""No import cycle inside postbode: every module's imports, read with `ast`, form a DAG."""
from __future__ import annotations

import ast
from pathlib import Path

import postbode

PACKAGE = Path(postbode.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The postbode modules a file imports at module level or in functions (TYPE_CHECKING aside)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name in modules}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    edges = {name: imports_of(path, modules) for name, path in files.items()}
    # a package imported for one of its modules is not an edge to that module's parent
    return {name: {t for t in targets if t != name and not name.startswith(t + ".")}
            for name, targets in edges.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "busy"
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "busy":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_postbode_has_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, " → ".join(cycle)


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_store_schema_and_audience_model_import_nothing_else_of_postbode():
    edges = graph()
    assert edges["postbode.store.schema"] == set()
    # PlanCounts lives in counting, which loads without SQLAlchemy and imports nothing of postbode
    assert edges["postbode.audience.model"] == {"postbode.counting"}
    assert edges["postbode.counting"] == set()
