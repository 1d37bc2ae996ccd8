"""The shape of the code: no import cycle inside postbode, and no function over 40 lines."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "postbode"
MAX_LINES = 40
# Functions allowed to be longer because they are one flat table (data, not logic), with why.
FLAT_TABLES: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (never imported when running)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *runtime_nodes(child)])
            continue
        yield node
        yield from runtime_nodes(node)


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The postbode modules one module imports (at the top or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            # `from a import b` imports the module a.b when there is one, else a name of a
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                      for a in node.names}
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One example path for each strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def long_functions() -> list[str]:
    too_long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                where = f"{path.relative_to(REPO)}:{node.lineno} {node.name}"
                key = f"{path.relative_to(REPO)}:{node.name}"
                if lines > MAX_LINES and key not in FLAT_TABLES:
                    too_long.append(f"{where} ({lines} lines)")
    return too_long


def test_the_import_walker_sees_imports_of_every_kind():
    graph = import_graph()
    assert "postbode.campaign" in graph["postbode.cli.send"]            # from postbode import x
    assert "postbode.campaign.sender" in graph["postbode.campaign.run"]  # from a.b import name
    assert "postbode.transports" in graph["postbode.campaign.session"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_postbode():
    found = cycles(import_graph())
    assert not found, "import cycles (each group imports itself through the others):\n" + \
        "\n".join(" ⇄ ".join(group) for group in found)


def test_no_function_is_longer_than_40_lines():
    found = long_functions()
    assert not found, f"functions over {MAX_LINES} lines (split them, or list a flat table " \
        "in FLAT_TABLES with the reason):\n" + "\n".join(found)
