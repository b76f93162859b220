"""JSON Schema front end, part 3: objects: which properties are emitted, in which order, and
their pieces or regex.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

from ..errors import CompileLimitError, UnsupportedSchemaError
from .pieces import Piece, HoleSpec, Text, regex_escape
from .schema_arrays import _in_order_subsets, _search
from .schema_load import ANNOTATIONS, JSON_STRING, _Node, _ptr_join, _Recursion, _Sub, _Unsat


class _Objects:
    """Methods of :class:`~.json_schema._Compiler` (a mixin: state lives there)."""

    def object_plan(self, n: _Node, depth: int, scaffold: bool):
        """For an object-only node with listed properties: [(name, _Sub, required)] in emission
        order, after sound fix-ups; None when the node is not such an object."""
        if "enum" in n.kw or self.types(n) != {"object"} or self.nots_left(n, {"object"}):
            return None
        props: dict = n.kw.get("properties", {})
        required = list(n.kw.get("required", []))
        if not props and not required:
            return None
        plan = self.object_props(n)
        if plan is None:
            return None
        if scaffold and not any(r for _, _, r in plan):
            return None
        return plan

    def object_props(self, n: _Node):
        """Listed properties as [(name, _Sub, required)]; applies additionalProperties (false
        sources), patternProperties, propertyNames, dependencies, min/maxProperties."""
        kp = n.kp
        props: dict = n.kw.get("properties", {})
        required = list(n.kw.get("required", []))
        names = list(props) + [r for r in required if r not in props]
        subs: dict[str, _Sub] = {}
        forbidden: set = set()
        pattern_props = n.kw.get("patternProperties", {})
        prop_sources = n.kw.get("_prop_sources", [])
        addl_sources = n.kw.get("_addl_sources", [])
        for name in names:
            parts = list(props[name].parts) if name in props else []
            for pat, psub in pattern_props.items():
                try:
                    if re.search(pat, name):
                        parts.extend(psub.parts)
                except re.error:
                    raise UnsupportedSchemaError(f"patternProperties regex {pat!r} is not "
                                                 f"supported", keyword="patternProperties",
                                                 pointer=kp.get("patternProperties", n.ptr))
            # additionalProperties of a source schema applies to names that schema does not list
            for araw, aptr, arefs, src_ptr in addl_sources:
                listed = set()
                for names_i, p_i, _, _ in prop_sources:
                    if p_i == src_ptr:
                        listed |= names_i
                if name in listed:
                    continue
                if pattern_props and any(re.search(p, name) for p in pattern_props):
                    # conservative: patternProperties of another source might cover it
                    pass
                if araw is False:
                    forbidden.add(name)
                elif araw is not True:
                    parts.append((araw, aptr, arefs))
            for uraw, uptr, urefs, unames, upats in n.kw.get("_ueprops", []):
                if name in unames or any(_search(p, name) for p in upats):
                    continue
                if uraw is False:
                    forbidden.add(name)
                else:
                    parts.append((uraw, uptr, urefs))
            subs[name] = _Sub(parts if parts else [(True, _ptr_join(n.ptr, "properties", name),
                                                    n.refs)])
        # propertyNames
        if "propertyNames" in n.kw:
            pn = n.kw["propertyNames"]
            schema = {"allOf": [p[0] for p in pn.parts]}
            v = self._sub_validator(schema)
            for name in names:
                if not v.is_valid(name):
                    forbidden.add(name)
        req = [r for r in required]
        for r in req:
            if r in forbidden:
                raise _Unsat(f"required property {r!r} is forbidden", n.kp.get("required", n.ptr),
                             "required")
        names = [x for x in names if x not in forbidden]
        reqset = set(req)
        # absence clauses (from `not: {required}` and oneOf exclusivity): one name of each
        # clause must be absent; leave out the last optional one when all are emitted
        clauses = list(n.kw.get("_clauses", []))
        for raw, ptr, refs in n.nots:
            cl = self._absence_clauses(raw)
            if cl is not None:
                clauses.extend(cl)
        for clause in clauses:
            if any(c not in names for c in clause):
                continue
            optional = [c for c in names if c in clause and c not in reqset]
            if not optional:
                raise _Unsat("required properties make a `not`/oneOf branch match",
                             n.kp.get("required", n.ptr), "required")
            names.remove(optional[-1])
            forbidden.add(optional[-1])
        # dependentRequired: a required trigger makes its dependents required; an optional
        # trigger is left out unless its dependents are all required already
        dr = n.kw.get("dependentRequired", {})
        ds = n.kw.get("dependentSchemas", {})
        changed = True
        while changed:
            changed = False
            for a, deps in dr.items():
                if a in reqset:
                    for d in deps:
                        if d not in reqset:
                            if d in forbidden:
                                raise _Unsat("dependentRequired conflicts", kp.get(
                                    "dependentRequired", n.ptr), "dependentRequired")
                            reqset.add(d)
                            if d not in names:
                                names.append(d)
                                subs[d] = self._addl_sub(n, d)
                            changed = True
        for a, deps in dr.items():
            if a not in reqset and a in names and not all(d in reqset for d in deps):
                names.remove(a)
        for a in ds:
            if a in names and a not in reqset:
                names.remove(a)
            elif a in reqset:
                raise UnsupportedSchemaError("dependentSchemas on a required property is not "
                                             "supported", keyword="dependentSchemas",
                                             pointer=kp.get("dependentSchemas", n.ptr))
        # min/maxProperties
        lo = n.kw.get("minProperties", 0)
        hi = n.kw.get("maxProperties")
        if hi is not None:
            if len(reqset) > hi:
                raise _Unsat("more required properties than maxProperties",
                             kp.get("maxProperties", n.ptr), "maxProperties")
            room = hi - len(reqset)
            kept = []
            for x in names:
                if x in reqset:
                    kept.append(x)
                elif room > 0:
                    kept.append(x)
                    room -= 1
            names = kept
        if lo > len(reqset):
            for x in names:
                if len(reqset) >= lo:
                    break
                if x not in reqset:
                    reqset.add(x)
            if len(reqset) < lo:
                raise UnsupportedSchemaError("minProperties needs more properties than the "
                                             "schema lists", keyword="minProperties",
                                             pointer=kp.get("minProperties", n.ptr))
        return [(x, subs[x], x in reqset) for x in names]

    def _addl_sub(self, n: _Node, name: str) -> _Sub:
        parts = []
        for araw, aptr, arefs, src_ptr in n.kw.get("_addl_sources", []):
            parts.append((araw, aptr, arefs))
        return _Sub(parts or [(True, n.ptr, n.refs)])

    @classmethod
    def _absence_clauses(cls, raw: Any) -> Optional[list]:
        """`not: S` where S only requires properties: clauses (sets of names, at least one of
        each absent) that make S fail; None if S is not of that shape."""
        if not isinstance(raw, dict) or not raw:
            return None
        keys = set(raw) - ANNOTATIONS
        if keys == {"required"} and isinstance(raw["required"], list) and raw["required"]:
            return [set(raw["required"])]
        if keys == {"allOf"} and isinstance(raw["allOf"], list):
            names: set = set()
            for b in raw["allOf"]:
                cl = cls._absence_clauses(b)
                if cl is None or len(cl) != 1:
                    return None
                names |= cl[0]
            return [names] if names else None
        if keys in ({"anyOf"}, {"oneOf"}) and isinstance(raw[next(iter(keys))], list):
            out = []
            for b in raw[next(iter(keys))]:
                cl = cls._absence_clauses(b)
                if cl is None:
                    return None
                out.extend(cl)
            return out or None
        return None

    @staticmethod
    def _not_required(raw: Any) -> Optional[set]:
        if isinstance(raw, dict) and set(raw) == {"required"} and isinstance(raw["required"], list):
            return set(raw["required"])
        if isinstance(raw, dict) and set(raw) == {"anyOf"} and isinstance(raw["anyOf"], list):
            out = set()
            for b in raw["anyOf"]:
                if isinstance(b, dict) and set(b) == {"required"} and len(b["required"]) == 1:
                    out |= set(b["required"])
                else:
                    return None
            return {x for x in out} if out else None
        return None

    def object_pieces(self, n: _Node, plan, lead: str, depth: int) -> list[Piece]:
        out: list[Piece] = [Text(lead + "{")]
        seen_required = False
        for name, sub, req in plan:
            key = json.dumps(name, ensure_ascii=False)
            pptr = sub.parts[0][1] if sub.parts else n.ptr
            if req:
                out.append(Text((", " if seen_required else "") + key + ":"))
                child = self.node(sub)
                out.extend(self.pieces(child, " ", name, depth + 1))
                seen_required = True
            else:
                try:
                    child = self.node(sub)
                    vr = self.value_regex(child, depth + 1)
                except (_Recursion, _Unsat):
                    continue
                except CompileLimitError:
                    continue  # leave the optional property out (sound)
                if vr is None:
                    continue
                rx, kind = vr
                kv = regex_escape(key + ": ") + rx
                body = ("(" + regex_escape(", ") + kv + ")?") if seen_required \
                    else ("(" + kv + regex_escape(", ") + ")?")
                out.append(HoleSpec(regex=body, kind=kind, pointer=pptr, name=name, optional=True,
                                max_tokens=child.kw.get("x-max-tokens"),
                                size=self.size_hint(child),
                                hint=(", " if seen_required else "") + key + ":"))
        out.append(Text("}"))
        return out

    def object_regex(self, n: _Node, depth: int) -> Optional[str]:
        outer = self.budget
        self.budget = max(outer // 2, 1000)
        try:
            return self._object_regex(n, depth, outer)
        finally:
            self.budget = outer

    def _object_regex(self, n: _Node, depth: int, budget: int) -> Optional[str]:
        props = n.kw.get("properties", {})
        required = n.kw.get("required", [])
        if props or required:
            plan = self.object_props(n)
            items = []
            for name, sub, req in plan:
                key = json.dumps(name, ensure_ascii=False)
                try:
                    vr = self.sub_regex(sub, depth + 1)
                except (_Recursion, _Unsat):
                    if req:
                        raise
                    continue
                if vr is None:
                    if req:
                        raise _Unsat(f"property {name!r} admits nothing", sub.parts[0][1])
                    continue
                items.append((regex_escape(key + ": ") + vr[0], req))
            # keep the regex small: leave out the largest optional properties (sound)
            while sum(2 * len(r) + 8 for r, _ in items) > budget * 0.9 and \
                    any(not q for _, q in items):
                big = max((i for i, (_, q) in enumerate(items) if not q),
                          key=lambda i: len(items[i][0]))
                items.pop(big)
            return r"\{" + _in_order_subsets(items) + r"\}"
        # no listed properties: a free map (or `{}`)
        closed = any(a is False for a, _, _, _ in n.kw.get("_addl_sources", []))
        restricted = ("_ueprops" in n.kw or "patternProperties" in n.kw or closed or
                      "dependentRequired" in n.kw or "dependentSchemas" in n.kw)
        if restricted:
            if n.kw.get("minProperties", 0) > 0:
                raise UnsupportedSchemaError("minProperties with no listed properties",
                                             keyword="minProperties",
                                             pointer=n.kp.get("minProperties", n.ptr))
            return r"\{\}"
        lo = n.kw.get("minProperties", 0)
        hi = n.kw.get("maxProperties")
        if lo > 1:
            raise UnsupportedSchemaError("minProperties > 1 on a free-form object",
                                         keyword="minProperties",
                                         pointer=n.kp.get("minProperties", n.ptr))
        if hi == 0:
            return r"\{\}"
        if depth >= self.max_depth:
            if lo > 0:
                raise _Unsat("object nesting deeper than max_depth", n.ptr)
            return r"\{\}"
        # key regex
        key = JSON_STRING
        if "propertyNames" in n.kw:
            kn = self.node(n.kw["propertyNames"])
            kn.kw.setdefault("type", {"string"})
            kr = self.value_regex(kn, depth + 1)
            if kr is None:
                return r"\{\}"
            key = kr[0]
        if "additionalProperties" in n.kw:
            vn = self.node(n.kw["additionalProperties"])
            try:
                vr = self.value_regex(vn, depth + 1)
            except (_Recursion, _Unsat):
                vr = None
            if vr is None:
                if lo > 0:
                    raise _Unsat("additionalProperties admits nothing", n.ptr)
                return r"\{\}"
            val = vr[0]
        else:
            val = self.free_value(self.max_depth - depth - 1)
        kv = key + ": " + val
        rep = "*" if hi is None else ("{0,%d}" % (hi - 1) if hi > 1 else "")
        inner = kv + (("(, " + kv + ")" + rep) if rep else "")
        return r"\{" + (inner if lo >= 1 else "(" + inner + ")?") + r"\}"
