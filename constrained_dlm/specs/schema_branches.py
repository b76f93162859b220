"""JSON Schema front end: is a merged node satisfiable, and are ``oneOf`` branches disjoint?

A ``oneOf`` is compiled as an alternation only where no instance can match two branches
(else it is refused: writing such an instance would be invalid). The checks are sound, not
complete: "may overlap" refuses some schemas whose branches are in fact disjoint.
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

from .schema_load import (
    ALL_TYPES,
    _Node,
    _Unsat,
)


class _Branches:
    """Mixin of the schema compiler: satisfiability and disjointness of merged nodes."""

    def check_sat(self, node: _Node) -> None:
        if node.false_at is not None:
            raise _Unsat("the schema `false` admits nothing", node.false_at)
        if "enum" in node.kw and not node.kw["enum"]:
            raise _Unsat("const/enum values conflict", node.kp.get("enum", node.ptr), "enum")
        if "type" in node.kw and not node.kw["type"]:
            raise _Unsat("types conflict", node.kp.get("type", node.ptr), "type")

    @staticmethod
    def _json_type(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "boolean"
        if isinstance(v, int):
            return "integer"
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            return "integer"
        if isinstance(v, float):
            return "number"
        if isinstance(v, str):
            return "string"
        if isinstance(v, list):
            return "array"
        return "object"

    def _sub_validator(self, schema: Any):
        return self._root_validator.evolve(schema=schema)

    def valid(self, raws: list, value: Any) -> bool:
        """jsonschema validity of ``value`` against all of ``raws`` (memoised)."""
        try:
            vkey = json.dumps(value, sort_keys=True)
        except (TypeError, ValueError):
            vkey = None
        key = (tuple(id(r) for r in raws), vkey)
        cache = self.__dict__.setdefault("_valid_cache", {})
        if vkey is not None and key in cache:
            return cache[key]
        schema = {"allOf": list(raws)} if raws else True
        ok = self._sub_validator(schema).is_valid(value)
        if vkey is not None:
            cache[key] = ok
        return ok

    @staticmethod
    def _families(ts) -> set:
        return {"number" if t == "integer" else t for t in ts}

    def _possible_types(self, n: _Node) -> set:
        if n.false_at is not None:
            return set()
        if "enum" in n.kw:
            return {self._json_type(v) for v in n.kw["enum"]}
        return set(n.kw.get("type", ALL_TYPES))

    def oneof_disjoint(self, i: int, branches: list, parent: _Node,
                       out_clauses: Optional[list] = None) -> bool:
        """Whether every instance of branch i (merged with the parent) fails every other branch:
        different types, literals the other branch rejects, or a required discriminator property
        whose literal values the other branch rejects."""
        try:
            ni = parent.copy()
            for raw, ptr, refs in branches[i].parts:
                self.merge_raw(ni, raw, ptr, refs)
        except Exception:
            return False
        ti = self._families(self._possible_types(ni))
        if out_clauses is None:
            out_clauses = []
        for j, other in enumerate(branches):
            if j == i:
                continue
            raw_j = other.parts[0][0]
            try:
                nj = self.node(other)
                tj = self._families(self._possible_types(nj))
            except Exception:
                nj, tj = None, self._families(ALL_TYPES)
            if not (ti & tj):
                continue
            if "enum" in ni.kw:
                try:
                    if all(not self.valid([raw_j], x) for x in ni.kw["enum"]):
                        continue
                except Exception:
                    pass
                return False
            if nj is not None and self._discriminated(ni, nj):
                continue
            req_j = raw_j.get("required") if isinstance(raw_j, dict) else None
            if isinstance(req_j, list) and req_j and self.types(ni) <= {"object"}:
                # make branch i fail branch j's `required`: one of its names stays absent
                clause = set(req_j) - set(ni.kw.get("required", []))
                if clause:
                    out_clauses.append(clause)
                    continue
            return False
        return True

    def _discriminated(self, ni: _Node, nj: _Node) -> bool:
        props = ni.kw.get("properties", {})
        if self._possible_types(ni) != {"object"}:
            return False
        jprops = nj.kw.get("properties", {})
        for name in ni.kw.get("required", []):
            if name not in props or name not in jprops:
                continue
            try:
                pn = self.node(props[name])
                if "enum" not in pn.kw:
                    continue
                vals = self.enum_values(pn)
                raws_j = [p[0] for p in jprops[name].parts]
                if all(not self.valid(raws_j, x) for x in vals):
                    return True
            except Exception:
                continue
        return False
