"""mdreg's modules form layers that import only downwards, and no import cycles.

Every import (module-level or deferred inside a function) is an edge. Layers, bottom to top
(docs/engine.md, "Layers"): a module may import its own layer and the layers below it, never
a layer above; and the graph of modules is acyclic, so each module can be read (and tested)
on top of the ones it uses."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "mdreg"

# bottom to top; a module belongs to the layer of its longest matching prefix
LAYERS: list[tuple[str, ...]] = [
    ("mdreg", "mdreg.errors", "mdreg.io", "mdreg.rng", "mdreg.registry", "mdreg.components", "mdreg.provenance",
     "mdreg.plugins"),
    ("mdreg.config",),
    ("mdreg.models", "mdreg.masking", "mdreg.diffusion", "mdreg.data"),
    ("mdreg.engine",),
    ("mdreg.runs",),
    ("mdreg.evaluation",),
    ("mdreg.launch", "mdreg.reports", "mdreg.benchmark"),
    ("mdreg.commands",),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def layer_of(module: str) -> int:
    best, found = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), index
    assert found is not None, f"{module} is in no layer; add it to LAYERS in tests/test_import_graph.py"
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} (layer {layer_of(a) + 1}) imports {b} (layer {layer_of(b) + 1})"
                  for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_mdreg_has_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_every_import_runs_down_the_layers():
    assert upward_imports(import_graph()) == []


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert upward_imports({"mdreg.engine.trainer": {"mdreg.evaluation.protocol"}, "mdreg.evaluation.protocol": set()})
    assert not upward_imports({"mdreg.commands.launch": {"mdreg.engine.trainer"}, "mdreg.engine.trainer": set()})


def test_the_graph_sees_deferred_and_relative_imports():
    graph = import_graph()
    assert "mdreg.engine.trainer" in graph["mdreg.launch.local"]  # module level
    assert "mdreg.registry" in graph["mdreg.config.lazy"]
    assert "mdreg.runs.queue" in graph["mdreg.runs.lock"]  # deferred, inside a method
