"""JSON Schema front end, part 2: ``$ref`` resolution and merging subschemas (``allOf``, drafts,
scopes) into nodes, and their expansion into branches (:mod:`.schema_branches` checks those).
"""

from __future__ import annotations

import collections
from typing import Any, Optional
from urllib.parse import unquote

from ..errors import InvalidSchemaError, UnsupportedSchemaError
from .schema_load import (
    ALL_TYPES,
    ANNOTATIONS,
    MAX_BRANCHES,
    _json_eq,
    _Node,
    _ptr_join,
    _Recursion,
    _Sub,
    _Unsat,
)
from .schema_refs import on_cycles, refs_in


class _Merging:
    """Methods of :class:`~.json_schema._Compiler` (a mixin: state lives there)."""

    def unsupported(self, msg: str, keyword: str, pointer: str) -> None:
        """Raise, or (lenient) record the dropped keyword and return so the caller ignores it."""
        if self.lenient:
            self.report.dropped.append((keyword, pointer))
            return
        raise UnsupportedSchemaError(msg, keyword=keyword, pointer=pointer)

    def resolve_ref(self, ref: str, pointer: str):
        if not isinstance(ref, str):
            raise InvalidSchemaError("$ref must be a string", keyword="$ref", pointer=pointer)
        base = ""
        if isinstance(self.root, dict) and isinstance(self.root.get("$id"), str):
            base = self.root["$id"].split("#")[0]
        frag = None
        if ref.startswith("#"):
            frag = ref[1:]
        elif base and ref.startswith(base) and ref[len(base):].startswith("#"):
            frag = ref[len(base) + 1:]
        elif base and ref == base:
            frag = ""
        if frag is None:
            raise UnsupportedSchemaError(f"only local $ref is supported, not {ref!r}",
                                         keyword="$ref", pointer=pointer)
        frag = unquote(frag)
        if frag and not frag.startswith("/"):
            # $anchor
            found = self._find_anchor(self.root, frag, "")
            if found is None:
                raise InvalidSchemaError(f"unresolvable $ref {ref!r}", keyword="$ref",
                                         pointer=pointer)
            return found
        node = self.root
        tptr = ""
        if frag:
            for tok in frag.split("/")[1:]:
                tok = tok.replace("~1", "/").replace("~0", "~")
                if isinstance(node, dict) and tok in node:
                    node = node[tok]
                elif isinstance(node, list) and tok.isdigit() and int(tok) < len(node):
                    node = node[int(tok)]
                else:
                    raise InvalidSchemaError(f"unresolvable $ref {ref!r}", keyword="$ref",
                                             pointer=pointer)
                tptr = _ptr_join(tptr, tok)
        if not isinstance(node, (dict, bool)):
            raise InvalidSchemaError(f"$ref {ref!r} does not point to a schema", keyword="$ref",
                                     pointer=pointer)
        return node, tptr

    def ref_counts(self, raw: Any, refs: tuple) -> tuple:
        """What of a ``$ref`` path the compile of ``raw`` depends on: how often each target
        that lies on a cycle and that ``raw`` can reach was passed (``merge_raw`` stops a
        target met ``max_depth`` times). A memo keyed by this is shared by every path that
        agrees on it."""
        graph, cyc = self._ref_graph()
        if not cyc or not refs:
            return ()
        memo = self.__dict__.setdefault("_reach_memo", {})
        reach = memo.get(id(raw))
        if reach is None:
            reach, todo = set(), [t for t in self._targets_of(raw)]
            while todo:
                t = todo.pop()
                if t not in reach:
                    reach.add(t)
                    todo += graph.get(t, ())
            memo[id(raw)] = reach = frozenset(reach & cyc)
        return tuple(sorted(collections.Counter(t for t in refs if t in reach).items()))

    def _targets_of(self, raw: Any) -> dict:
        """The targets of the ``$ref``s in ``raw``'s in-place subtree: pointer -> schema."""
        out = {}
        for ref in refs_in(raw):
            try:
                target, tptr = self.resolve_ref(ref, "")
            except (InvalidSchemaError, UnsupportedSchemaError):
                continue                # raised where the $ref is merged, not here
            out[tptr] = target
        return out

    def _ref_graph(self) -> tuple[dict, frozenset]:
        """The ``$ref`` graph (target pointer -> targets its in-place subtree refers to) and the
        targets that may lie on a cycle (an over-approximation: targets between two cycles
        are kept too)."""
        got = self.__dict__.get("_refs")
        if got is not None:
            return got
        graph: dict = {}
        todo = [(self.root, "")]
        while todo:
            raw, tptr = todo.pop()
            if tptr not in graph:
                targets = self._targets_of(raw)
                graph[tptr] = set(targets)
                todo += [(r, t) for t, r in targets.items()]
        self._refs = (graph, on_cycles(graph))
        return self._refs

    def _find_anchor(self, node, name, ptr):
        if isinstance(node, dict):
            if node.get("$anchor") == name:
                return node, ptr
            for k, v in node.items():
                if k in ("enum", "const", "examples", "default"):
                    continue
                r = self._find_anchor(v, name, _ptr_join(ptr, k))
                if r:
                    return r
        elif isinstance(node, list):
            for i, v in enumerate(node):
                r = self._find_anchor(v, name, _ptr_join(ptr, i))
                if r:
                    return r
        return None

    def node(self, sub: _Sub) -> _Node:
        acc = _Node()
        first = True
        for raw, ptr, refs in sub.parts:
            if first:
                acc.ptr = ptr
                acc.refs = refs
                first = False
            self.merge_raw(acc, raw, ptr, refs)
        return acc

    def node_of(self, raw: Any, ptr: str, refs: tuple = ()) -> _Node:
        return self.node(_Sub([(raw, ptr, refs)]))

    def merge_raw(self, acc: _Node, raw: Any, ptr: str, refs: tuple) -> None:
        if raw is True:
            return
        if raw is False:
            if acc.false_at is None:
                acc.false_at = ptr
            return
        if not isinstance(raw, dict):
            raise InvalidSchemaError("a schema must be an object or a boolean", pointer=ptr)
        acc.raws.append(raw)
        for a, b in (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems"),
                     ("minProperties", "maxProperties")):
            va, vb = raw.get(a), raw.get(b)
            if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and \
                    not isinstance(va, bool) and not isinstance(vb, bool) and va > vb:
                raise InvalidSchemaError(f"{a} is greater than {b}", keyword=a, pointer=ptr)
        if "$ref" in raw:
            ref = raw["$ref"]
            target, tptr = self.resolve_ref(ref, _ptr_join(ptr, "$ref"))
            if refs.count(tptr) >= self.max_depth:
                raise _Recursion(ptr, ref)
            self.merge_raw(acc, target, tptr, refs + (tptr,))
        for k in ("$dynamicRef", "$recursiveRef"):
            if k in raw:
                raise UnsupportedSchemaError(f"{k} is not supported", keyword=k, pointer=ptr)
        if "allOf" in raw:
            for i, sub in enumerate(raw["allOf"]):
                self.merge_raw(acc, sub, _ptr_join(ptr, "allOf", i), refs)
        raw = self._normalize_draft(raw, ptr)
        if "items" in raw:
            acc.kw.setdefault("_item_sources", []).append(
                (len(raw.get("prefixItems", [])), _Sub([(raw["items"], _ptr_join(ptr, "items"), refs)])))
        if "unevaluatedProperties" in raw and raw["unevaluatedProperties"] is not True:
            names, pats, all_p, _, _ = self.scope(raw, top=True)
            if not all_p:
                acc.kw.setdefault("_ueprops", []).append(
                    (raw["unevaluatedProperties"], _ptr_join(ptr, "unevaluatedProperties"), refs,
                     names, pats))
        if "unevaluatedItems" in raw and raw["unevaluatedItems"] is not True:
            _, _, _, plen, all_i = self.scope(raw, top=True)
            if not all_i:
                acc.kw.setdefault("_ueitems", []).append(
                    (plen, _Sub([(raw["unevaluatedItems"], _ptr_join(ptr, "unevaluatedItems"),
                                  refs)])))
        for k, v in raw.items():
            if k in ANNOTATIONS or k in ("$ref", "allOf") or k.startswith("x-") and k != "x-max-tokens":
                continue
            self.merge_kw(acc, k, v, ptr, refs)

    def scope(self, raw: Any, top: bool = False, depth: int = 0):
        """Static view of what a schema evaluates in place (properties, allOf, $ref; not the
        conditional applicators): (names, patterns, all properties evaluated, prefix length,
        all items evaluated)."""
        names: set = set()
        pats: list = []
        all_p = all_i = False
        plen = 0
        if not isinstance(raw, dict) or depth > 8:
            return names, pats, all_p, plen, all_i
        raw = self._normalize_draft(raw, "")
        if isinstance(raw.get("properties"), dict):
            names |= set(raw["properties"])
        if isinstance(raw.get("patternProperties"), dict):
            pats += list(raw["patternProperties"])
        if "additionalProperties" in raw or (not top and "unevaluatedProperties" in raw):
            all_p = True
        if isinstance(raw.get("prefixItems"), list):
            plen = len(raw["prefixItems"])
        if "items" in raw or (not top and "unevaluatedItems" in raw):
            all_i = True
        subs = list(raw.get("allOf", [])) if isinstance(raw.get("allOf"), list) else []
        if isinstance(raw.get("$ref"), str):
            try:
                subs.append(self.resolve_ref(raw["$ref"], "")[0])
            except Exception:
                pass
        for sub in subs:
            n2, p2, a2, l2, i2 = self.scope(sub, False, depth + 1)
            names |= n2
            pats += p2
            all_p |= a2
            all_i |= i2
            plen = max(plen, l2)
        return names, pats, all_p, plen, all_i

    def _normalize_draft(self, raw: dict, ptr: str) -> dict:
        """Older-draft spellings to 2020-12 ones."""
        out = raw
        if isinstance(raw.get("items"), list):
            out = dict(raw)
            out["prefixItems"] = out.pop("items")
            if "additionalItems" in out:
                out["items"] = out.pop("additionalItems")
        elif "additionalItems" in raw:
            out = dict(raw)
            out.pop("additionalItems")  # ignored without array-form items
        if isinstance(raw.get("exclusiveMinimum"), bool) or isinstance(raw.get("exclusiveMaximum"), bool):
            out = dict(out)
            for ex, inc in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
                if isinstance(out.get(ex), bool):
                    flag = out.pop(ex)
                    if flag and inc in out:
                        out[ex] = out.pop(inc)
        if "dependencies" in raw:
            out = dict(out)
            deps = out.pop("dependencies")
            if isinstance(deps, dict):
                dr = {k: v for k, v in deps.items() if isinstance(v, list)}
                ds = {k: v for k, v in deps.items() if not isinstance(v, list)}
                if dr:
                    out["dependentRequired"] = {**out.get("dependentRequired", {}), **dr}
                if ds:
                    out["dependentSchemas"] = {**out.get("dependentSchemas", {}), **ds}
        return out

    def merge_kw(self, acc: _Node, k: str, v: Any, ptr: str, refs: tuple) -> None:
        kw, kp = acc.kw, acc.kp
        kptr = _ptr_join(ptr, k)

        def bad(msg):
            raise InvalidSchemaError(msg, keyword=k, pointer=ptr)

        if k == "type":
            ts = [v] if isinstance(v, str) else v
            if not isinstance(ts, list) or not all(t in ALL_TYPES for t in ts):
                bad(f"bad type {v!r}")
            s = set(ts)
            if "number" in s:
                s.add("integer")
            if "type" in kw:
                s = kw["type"] & s
            kw["type"] = s
            kp[k] = ptr
        elif k in ("properties", "patternProperties", "dependentSchemas"):
            if not isinstance(v, dict):
                bad(f"{k} must be an object")
            d = kw.setdefault(k, {})
            for name, sub in v.items():
                d.setdefault(name, _Sub([])).parts.append((sub, _ptr_join(kptr, name), refs))
            kp.setdefault(k, ptr)
            if k == "properties":
                # additionalProperties seen before applies to these names in that schema only;
                # handled by recording each source's closed-ness below.
                kw.setdefault("_prop_sources", []).append((set(v), ptr, refs, None))
        elif k in ("additionalProperties", "items", "propertyNames", "contains",
                   "unevaluatedProperties", "unevaluatedItems"):
            kw.setdefault(k, _Sub([])).parts.append((v, kptr, refs))
            kp.setdefault(k, ptr)
            if k == "additionalProperties":
                kw.setdefault("_addl_sources", []).append((v, kptr, refs, ptr))
        elif k == "prefixItems":
            if not isinstance(v, list):
                bad("prefixItems must be an array")
            cur = kw.setdefault(k, [])
            for i, sub in enumerate(v):
                if i < len(cur):
                    cur[i].parts.append((sub, _ptr_join(kptr, i), refs))
                else:
                    cur.append(_Sub([(sub, _ptr_join(kptr, i), refs)]))
            kw.setdefault("_prefix_sources", []).append((len(v), ptr))
            kp.setdefault(k, ptr)
        elif k == "required":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                bad("required must be an array of strings")
            cur = kw.setdefault(k, [])
            for x in v:
                if x not in cur:
                    cur.append(x)
            kp.setdefault(k, ptr)
        elif k in ("anyOf", "oneOf"):
            if not isinstance(v, list) or not v:
                bad(f"{k} must be a non-empty array")
            acc.anyofs.append((k, [_Sub([(b, _ptr_join(kptr, i), refs)]) for i, b in enumerate(v)],
                               ptr))
        elif k == "not":
            acc.nots.append((v, kptr, refs))
        elif k == "if":
            # `then`/`else` are read from the same raw by the caller: store the triple
            kw.setdefault("_ifs", []).append((v, kptr, refs))
        elif k in ("then", "else"):
            kw.setdefault("_" + k, []).append((v, kptr, refs))
        elif k == "enum":
            if not isinstance(v, list) or not v:
                bad("enum must be a non-empty array")
            if "enum" in kw:
                v = [x for x in kw["enum"] if any(_json_eq(x, y) for y in v)]
            kw["enum"] = list(v)
            kp[k] = ptr
        elif k == "const":
            if "enum" in kw:
                vals = [x for x in kw["enum"] if _json_eq(x, v)]
            else:
                vals = [v]
            kw["enum"] = vals
            kp["enum"] = ptr
        elif k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                bad(f"{k} must be a number")
            if k in kw:
                v = max(kw[k], v) if "min" in k.lower() else min(kw[k], v)
            kw[k] = v
            kp[k] = ptr
        elif k in ("minLength", "minItems", "minProperties", "maxLength", "maxItems",
                   "maxProperties", "minContains", "maxContains"):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
                bad(f"{k} must be a non-negative integer")
            v = int(v)
            if k in kw:
                v = max(kw[k], v) if k.startswith("min") else min(kw[k], v)
            kw[k] = v
            kp[k] = ptr
        elif k == "x-max-tokens":
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                bad("x-max-tokens must be a positive integer")
            kw[k] = v
            kp[k] = ptr
        elif k == "uniqueItems":
            if not isinstance(v, bool):
                bad("uniqueItems must be a boolean")
            kw[k] = kw.get(k, False) or v
            kp[k] = ptr
        elif k == "multipleOf":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                bad("multipleOf must be a positive number")
            kw.setdefault(k, [])
            if not any(x == v for x in kw[k]):
                kw[k].append(v)
            kp[k] = ptr
        elif k == "dependentRequired":
            if not isinstance(v, dict):
                bad("dependentRequired must be an object")
            d = kw.setdefault(k, {})
            for a, deps in v.items():
                if not isinstance(deps, list):
                    bad("dependentRequired values must be arrays")
                d.setdefault(a, [])
                d[a] += [x for x in deps if x not in d[a]]
            kp[k] = ptr
        elif k in ("pattern", "format"):
            if not isinstance(v, str):
                bad(f"{k} must be a string")
            kw.setdefault(k, [])
            if v not in kw[k]:
                kw[k].append(v)
            kp[k] = ptr
        else:
            # unknown keyword: an annotation in JSON Schema
            return

    def expand(self, node: _Node, budget: int = MAX_BRANCHES) -> list[_Node]:
        """Distribute anyOf/oneOf/if-then over the node: a list of applicator-free alternatives.

        Alternatives that are recursive past max_depth or unsatisfiable are left out; if none
        remain, the first such reason is raised."""
        if not node.anyofs and "_ifs" not in node.kw and "_then" not in node.kw \
                and "_else" not in node.kw:
            return [node]
        node = node.copy()
        # if/then/else: emit only instances that satisfy `if` and `then`
        ifs = node.kw.pop("_ifs", [])
        thens = node.kw.pop("_then", [])
        node.kw.pop("_else", None)
        if ifs:
            for raw, ptr, refs in ifs + thens:
                self.merge_raw(node, raw, ptr, refs)
        if not node.anyofs:
            return self.expand(node, budget)
        kind, branches, aptr = node.anyofs.pop(0)
        out: list[_Node] = []
        first_err: Optional[Exception] = None
        unsupported: Optional[Exception] = None
        kept_idx = []
        for i, br in enumerate(branches):
            try:
                merged = node.copy()
                for raw, ptr, refs in br.parts:
                    self.merge_raw(merged, raw, ptr, refs)
                subs = self.expand(merged, budget)
                for s in subs:
                    self.check_sat(s)
                out_i = [s for s in subs]
            except (_Recursion, _Unsat) as exc:
                first_err = first_err or exc
                continue
            except UnsupportedSchemaError as exc:
                unsupported = unsupported or exc
                continue
            if kind == "oneOf" and len(branches) > 1:
                clauses: list = []
                if self.oneof_disjoint(i, branches, node, clauses):
                    for s_ in out_i:
                        if clauses:
                            s_.kw["_clauses"] = list(s_.kw.get("_clauses", [])) + clauses
                            s_.kw["type"] = set(s_.kw.get("type", ALL_TYPES)) & {"object"}
                else:
                    unsupported = unsupported or UnsupportedSchemaError(
                        "oneOf branches that may overlap are not supported", keyword="oneOf",
                        pointer=aptr)
                    continue
            kept_idx.append(i)
            out.extend(out_i)
            if len(out) > budget:
                raise UnsupportedSchemaError(f"more than {budget} alternatives after expanding "
                                             f"{kind}", keyword=kind, pointer=aptr)
        if not out:
            if unsupported is not None and not isinstance(first_err, _Recursion):
                raise unsupported
            if first_err is not None:
                raise first_err
            raise unsupported  # type: ignore[misc]
        return out

