"""JSON Schema front end: the ``$ref`` graph's shape, for memo keys (see ``schema_merge.ref_counts``).

A subschema's value regex depends on its ``$ref`` path only through how often each target on
a cycle was passed (``max_depth``); these helpers find the ``$ref``s of a subschema and the
targets that may lie on a cycle.
"""

from __future__ import annotations

from typing import Any

from .schema_load import ANNOTATIONS


def refs_in(raw: Any) -> list:
    """The ``$ref`` strings of a schema's in-place subtree (not ``definitions``/``$defs``, not
    constants)."""
    out, stack = [], [raw]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if isinstance(v.get("$ref"), str):
                out.append(v["$ref"])
            stack += [w for k, w in v.items()
                      if k not in ANNOTATIONS and k not in ("enum", "const")]
        elif isinstance(v, list):
            stack += v
    return out


def on_cycles(graph: dict) -> frozenset:
    """Nodes of ``graph`` (node -> set of successors) that may lie on a cycle: what is left
    after trimming nodes without successors or without predecessors until none is left (an
    over-approximation: nodes on a path between two cycles stay too)."""
    preds: dict = {t: set() for t in graph}
    for t, succ in graph.items():
        for u in succ:
            preds[u].add(t)
    succs = {t: set(v) for t, v in graph.items()}
    live = set(graph)
    todo = [t for t in graph if not succs[t] or not preds[t]]
    while todo:
        t = todo.pop()
        if t not in live:
            continue
        live.discard(t)
        for u in succs[t]:
            preds[u].discard(t)
            if u in live and not preds[u]:
                todo.append(u)
        for u in preds[t]:
            succs[u].discard(t)
            if u in live and not succs[u]:
                todo.append(u)
    return frozenset(live)
