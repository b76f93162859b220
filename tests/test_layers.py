"""The package's folders are its data flow, bottom up, and nothing imports upward.

    automata -> specs -> compile -> decode <- models -> interfaces (api, infill, cli, serve, batch)

Read from the sources (every ``import``, at module level or inside a function), so a new import
that breaks the order, or closes a circle between modules, fails here with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "constrained_dlm"
SHARED = {"errors"}                  # leaf modules every layer may use
# the folders (or top-level modules) each layer may import, besides itself and SHARED
ALLOWED = {
    "automata": set(),
    "specs": {"automata"},
    "compile": {"automata", "specs"},
    "decode": {"automata", "compile"},
    "models": {"automata", "compile", "decode"},
    "train": {"automata", "specs", "compile", "models", "api"},
}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _imports(path: Path):
    """(line, imported module inside the package) for every import of ``path``."""
    mod = _module(path)
    pkg = mod.split(".")[:-1] if path.name != "__init__.py" else mod.split(".")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("constrained_dlm"):
                target = node.module[len("constrained_dlm"):].lstrip(".")
            else:
                continue
            if node.module is None or node.level and not node.module:
                for a in node.names:        # from . import x: x is a module or a name
                    yield node.lineno, (target + "." if target else "") + a.name
            else:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("constrained_dlm."):
                    yield node.lineno, a.name[len("constrained_dlm."):]


def _layer(mod: str) -> str:
    return mod.split(".")[0]


def test_no_layer_imports_upward():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        layer = _layer(_module(path)) if _module(path) else ""
        if layer not in ALLOWED:
            continue
        for line, target in _imports(path):
            t = _layer(target)
            if t in (layer, *SHARED) or t in ALLOWED[layer]:
                continue
            bad.append(f"{path.relative_to(PKG.parent)}:{line} ({layer}) imports {target} ({t})")
    assert not bad, "\n".join(bad)


def test_automata_import_nothing_above_them():
    for path in (PKG / "automata").glob("*.py"):
        for line, target in _imports(path):
            assert _layer(target) in ("automata", *SHARED), f"{path.name}:{line} imports {target}"


def test_no_import_circles_between_modules():
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for m, p in mods.items():
        deps = set()
        for _, t in _imports(p):
            while t and t not in mods:          # "a.b.name" -> module "a.b"
                t = t.rpartition(".")[0]
            if t and t != m and not (mods[t].name == "__init__.py" and m.startswith(t + ".")):
                deps.add(t)
        graph[m] = deps
    # Tarjan's strongly connected components
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not comps, f"import circles: {comps}"
