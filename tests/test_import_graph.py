"""The import graph of ``core`` and ``visualizer`` has no cycle, and ``core`` stays pure NumPy.

Read from the source with ``ast``: every import counts, at module level or inside a function (an
import moved into a function to dodge a cycle is still a cycle).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "visualizer")
CORE_FORBIDDEN = ("visualizer", "dash", "plotly")

# Edges left out of the cycle check. This set stays empty: break a cycle instead of adding to it.
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported_names(path: Path, known=()) -> set[str]:
    """Every dotted name ``path`` imports, anywhere in the file, relative imports resolved.
    ``from a import b`` names ``a.b`` when that is one of the ``known`` modules, else ``a``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name resolves to the longest module it names)."""
    mods = modules()
    edges = {}
    for name, path in mods.items():
        targets = set()
        for imported in imported_names(path, mods):
            parts = imported.split(".")
            for n in range(len(parts), 0, -1):
                if ".".join(parts[:n]) in mods:
                    targets.add(".".join(parts[:n]))
                    break
        edges[name] = targets - {name}
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_is_read():
    edges = graph()
    assert "visualizer.views" in edges["visualizer.callbacks"]
    assert "visualizer.serve" in edges["visualizer.cli"]  # a function-level import counts too
    assert "visualizer.limits" in edges["visualizer.jobs"] and "visualizer.jobs" not in edges["visualizer.limits"]
    assert "core" in edges["visualizer.compute"]


def test_no_import_cycles():
    edges = {a: {b for b in targets if (a, b) not in ALLOWED} for a, targets in graph().items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_imports_neither_the_app_nor_plotting():
    for name, path in modules().items():
        if name.split(".")[0] != "core":
            continue
        bad = {n for n in imported_names(path) if n.split(".")[0] in CORE_FORBIDDEN}
        assert not bad, f"{name} imports {sorted(bad)}"
