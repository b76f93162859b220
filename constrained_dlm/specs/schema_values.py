"""JSON Schema front end, part 5: the regex of a value: types, enums, numbers, strings,
alternatives and what is left unhandled.
"""

from __future__ import annotations

import math
import re
from typing import Optional

from ..errors import CompileLimitError, InvalidSchemaError, UnsupportedSchemaError
from .pattern_translate import translate_pattern_ex
from .pieces import regex_escape
from .regex_parts import (
    BOOLEAN,
    FORMAT_BODIES,
    NULL,
    NUMBER,
    PatternUnsupported,
    integer_range_regex,
    number_range_regex,
)
from .schema_arrays import _IGNORED_FORMATS, _width
from .schema_load import (
    ALL_TYPES,
    JSON_STRING,
    MAX_NESTED_ASCII,
    MAX_NESTED_SAFE,
    _dec,
    _literal_texts,
    _Node,
    _Recursion,
    _Sub,
    _Unsat,
)


class _Values:
    """Methods of :class:`~.json_schema._Compiler` (a mixin: state lives there)."""

    def types(self, n: _Node) -> set:
        ts = set(n.kw.get("type", ALL_TYPES))
        if "number" in ts:
            ts.discard("integer")
        for raw, ptr, refs in n.nots:
            if isinstance(raw, dict) and set(raw) == {"type"}:
                t = raw["type"]
                tl = {t} if isinstance(t, str) else set(t)
                if "number" in tl:
                    tl.add("integer")
                ts -= tl
            elif self._absence_clauses(raw) is not None:
                ts &= {"object"}  # `not: {required}` rejects every non-object
        return ts

    def nots_left(self, n: _Node, types: set) -> list:
        """`not` subschemas that are not handled by type subtraction / required forbidding."""
        left = []
        for raw, ptr, refs in n.nots:
            if isinstance(raw, dict) and set(raw) == {"type"}:
                t = raw["type"]
                tl = {t} if isinstance(t, str) else set(t)
                if "integer" in tl and "number" not in tl and "number" in n.kw.get("type", ALL_TYPES):
                    left.append((raw, ptr))
                continue
            if self._absence_clauses(raw) is not None:
                continue
            left.append((raw, ptr))
        return left

    def sub_regex(self, sub: _Sub, depth: int) -> Optional[tuple[str, str]]:
        """value_regex of a subschema, memoised (the same $ref target recurs often)."""
        key = (tuple((id(r), self.ref_counts(r, refs)) for r, _, refs in sub.parts), depth,
               self.budget)
        cache = self.__dict__.setdefault("_sub_cache", {})
        if key in cache:
            ok, val = cache[key]
            if ok:
                return val
            raise val
        try:
            val = self.value_regex(self.node(sub), depth)
        except (_Recursion, _Unsat, UnsupportedSchemaError, CompileLimitError,
                InvalidSchemaError) as exc:
            if not self.lenient:
                cache[key] = (False, exc)
            raise
        if not self.lenient:
            cache[key] = (True, val)
        return val

    def value_regex(self, node: _Node, depth: int) -> Optional[tuple[str, str]]:
        """A self-contained regex for the node's values (no leading space) and its kind."""
        return self.alts_regex(self.expand(node), depth)

    def alts_regex(self, alts: list, depth: int) -> Optional[tuple[str, str]]:
        """Alternation of the alternatives' regexes; alternatives that fail (recursion,
        unsatisfiable, unsupported) are left out when others remain (a sound narrowing)."""
        regs, kinds = [], []
        errors: list[Exception] = []
        for a in alts:
            try:
                self.check_sat(a)
                r = self.value_regex_expanded(a, depth)
            except (_Recursion, _Unsat, UnsupportedSchemaError, CompileLimitError) as exc:
                if len(alts) == 1:
                    raise
                errors.append(exc)
                continue
            if r is None:
                continue
            regs.append(r[0])
            kinds.append(r[1])
        if not regs:
            for e in errors:
                if isinstance(e, (UnsupportedSchemaError, CompileLimitError)):
                    raise e
            if errors:
                raise errors[0]
            return None
        rx = regs[0] if len(regs) == 1 else "(" + "|".join(regs) + ")"
        return rx, (kinds[0] if len(set(kinds)) == 1 else "any")

    def value_regex_expanded(self, n: _Node, depth: int) -> Optional[tuple[str, str]]:
        self.check_sat(n)
        if "enum" in n.kw:
            return self.enum_regex(n)
        types = self.types(n)
        for raw, ptr in self.nots_left(n, types):
            self.unsupported("`not` is only supported for types and required properties", "not",
                             ptr.rsplit("/", 1)[0])
        self.check_unhandled(n, types)
        if not types:
            raise _Unsat("no type left", n.kp.get("type", n.ptr), "type")
        regs, kinds = [], []
        order = ["object", "array", "string", "number", "integer", "boolean", "null"]
        for t in order:
            if t not in types:
                continue
            try:
                r = self.type_regex(n, t, depth)
            except _Unsat:
                if len(types) == 1:
                    raise
                continue
            if r is None:
                continue
            regs.append(r)
            kinds.append(t)
        if not regs:
            raise _Unsat("no value can be emitted", n.ptr)
        if len(regs) == 1:
            return self.size_check(regs[0], n), kinds[0]
        return self.size_check("(" + "|".join(regs) + ")", n), "any"

    def size_check(self, rx: str, n: _Node) -> str:
        if len(rx) > self.max_regex_chars:
            raise CompileLimitError(
                f"the regex for {n.ptr or '/'} has {len(rx)} characters, more than "
                f"max_regex_chars={self.max_regex_chars}; raise max_regex_chars or simplify the "
                f"schema (fewer optional nested properties / alternatives)",
                limit="max_regex_chars", value=len(rx))
        return rx

    def check_unhandled(self, n: _Node, types: set) -> None:
        kw = n.kw
        if "multipleOf" in kw and types & {"number", "integer"}:
            vals = kw["multipleOf"]
            if not all(float(v) == 1.0 for v in vals):
                self.unsupported("multipleOf other than 1 is not supported", "multipleOf",
                                 n.kp.get("multipleOf", n.ptr))
        if "array" in types:
            if kw.get("uniqueItems") and not self._unique_ok(n):
                self.unsupported("uniqueItems is only supported for enum items or maxItems <= 1",
                                 "uniqueItems", n.kp.get("uniqueItems", n.ptr))
            for k in ("minContains", "maxContains"):
                if k in kw and "contains" in kw and not (k == "minContains" and kw[k] <= 1):
                    self.unsupported(f"{k} is not supported", k, n.kp.get(k, n.ptr))
            if "unevaluatedItems" in kw:
                ue = kw["unevaluatedItems"]
                if not ("items" in kw or all(p[0] is True for p in ue.parts)):
                    # we emit only prefixItems-described items when unevaluatedItems is set
                    pass
        if "string" in types:
            if len(kw.get("pattern", [])) > 1:
                self.unsupported("several different patterns on one string", "pattern",
                                 n.kp.get("pattern", n.ptr))
            if len(kw.get("format", [])) > 1:
                self.unsupported("several different formats on one string", "format",
                                 n.kp.get("format", n.ptr))

    def _unique_ok(self, n: _Node) -> bool:
        if n.kw.get("maxItems", 2) <= 1:
            return True
        if "prefixItems" in n.kw or "contains" in n.kw:
            return False
        if "items" not in n.kw:
            return False
        lo = n.kw.get("minItems", 0)
        if lo > 1:
            return False
        try:
            item = self.node(n.kw["items"])
        except Exception:
            return False
        if "enum" not in item.kw or item.anyofs:
            return False
        hi = n.kw.get("maxItems")
        return hi is None or hi >= len(item.kw["enum"])

    def enum_regex(self, n: _Node) -> Optional[tuple[str, str]]:
        """Enum/const: candidates filtered through jsonschema against the whole node (exact)."""
        vals = []
        for x in n.kw["enum"]:
            ok = self.valid(n.raws, x)
            # types from `not`/merges are included in raws; double-check type keyword
            if ok and "type" in n.kw:
                t = self._json_type(x)
                ok = t in n.kw["type"] or (t == "integer" and "number" in n.kw["type"])
            if ok:
                vals.append(x)
        if not vals:
            raise _Unsat("no enum/const value satisfies the schema", n.kp.get("enum", n.ptr),
                         "enum")
        alts = []
        for x in vals:
            for s in _literal_texts(x):
                r = regex_escape(s)
                if r not in alts:
                    alts.append(r)
        return (alts[0] if len(alts) == 1 else "(" + "|".join(alts) + ")"), "enum"

    def type_regex(self, n: _Node, t: str, depth: int) -> Optional[str]:
        if t == "null":
            return NULL
        if t == "boolean":
            return BOOLEAN
        if t in ("integer", "number"):
            return self.number_regex(n, t)
        if t == "string":
            return self.string_regex(n)
        if t == "array":
            return self.array_regex(n, depth)
        if t == "object":
            return self.object_regex(n, depth)
        raise AssertionError(t)

    def number_regex(self, n: _Node, t: str) -> Optional[str]:
        kw = n.kw
        integer = t == "integer" or any(float(m) == 1.0 for m in kw.get("multipleOf", []))
        lo = hi = None
        lo_incl = hi_incl = True
        lo_kw = hi_kw = "minimum"            # the keywords that set each bound, for the error
        if "minimum" in kw:
            lo = _dec(kw["minimum"])
        if "exclusiveMinimum" in kw:
            e = _dec(kw["exclusiveMinimum"])
            if lo is None or e >= lo:
                lo, lo_incl, lo_kw = e, False, "exclusiveMinimum"
        if "maximum" in kw:
            hi, hi_kw = _dec(kw["maximum"]), "maximum"
        if "exclusiveMaximum" in kw:
            e = _dec(kw["exclusiveMaximum"])
            if hi is None or e <= hi:
                hi, hi_incl, hi_kw = e, False, "exclusiveMaximum"

        def empty(what):
            bounds = ", ".join(f"{k} {kw[k]}" for k in dict.fromkeys((lo_kw, hi_kw)) if k in kw)
            return _Unsat(f"empty {what} range ({bounds})", n.kp.get(lo_kw, n.ptr), lo_kw)

        if lo is not None and hi is not None and (lo > hi or (lo == hi and not (lo_incl and hi_incl))):
            if "minimum" in kw and "maximum" in kw and _dec(kw["minimum"]) > _dec(kw["maximum"]):
                raise InvalidSchemaError("minimum is greater than maximum", keyword="minimum",
                                         pointer=kw and n.kp.get("minimum", n.ptr))
            raise empty("numeric")
        if integer:
            ilo = None if lo is None else (math.ceil(lo) if lo_incl else math.floor(lo) + 1)
            ihi = None if hi is None else (math.floor(hi) if hi_incl else math.ceil(hi) - 1)
            rx = integer_range_regex(ilo, ihi)
            if rx is None:
                raise empty("integer")
            return rx
        rx = number_range_regex(lo, lo_incl, hi, hi_incl)
        if rx is None:
            raise empty("numeric")
        return rx

    def string_info(self, n: _Node):
        """(body regex | None for a plain JSON string, body may have escapes, minLength,
        maxLength); raises when unsupported."""
        kw = n.kw
        lo = kw.get("minLength", 0)
        hi = kw.get("maxLength")
        if hi is not None and lo > hi:
            raise _Unsat("minLength > maxLength", n.kp.get("minLength", n.ptr), "minLength")
        pats = kw.get("pattern", [])
        fmts = kw.get("format", [])
        body = None
        escapes = False
        if pats and fmts:
            f = fmts[0]
            if f in FORMAT_BODIES or f not in _IGNORED_FORMATS:
                self.unsupported("pattern together with format on one string", "pattern",
                                 n.kp.get("pattern", n.ptr))
                pats = []
        if pats:
            try:
                body, escapes = translate_pattern_ex(pats[0])
            except PatternUnsupported as exc:
                self.unsupported(f"pattern not supported: {exc}", "pattern",
                                 n.kp.get("pattern", n.ptr))
                body = None
        elif fmts:
            f = fmts[0]
            if f in FORMAT_BODIES:
                body = FORMAT_BODIES[f]
            elif f in _IGNORED_FORMATS:
                body = None
            else:
                self.unsupported(f"format {f!r} is not supported", "format",
                                 n.kp.get("format", n.ptr))
        if body is not None and not escapes and (lo > 0 or hi is not None):
            wmin, wmax = _width(body)
            if wmin >= lo and (hi is None or wmax <= hi):
                lo, hi = 0, None
        return body, escapes, lo, hi

    def string_regex(self, n: _Node) -> str:
        body, escapes, lo, hi = self.string_info(n)
        if body is None:
            if lo == 0 and hi is None:
                return JSON_STRING
            return '"' + self.bounded(lo, hi, n) + '"'
        if lo == 0 and hi is None:
            return '"' + body + '"'
        if escapes:
            self.unsupported("length bounds with a pattern that needs escapes", "maxLength",
                             n.kp.get("maxLength", n.kp.get("minLength", n.ptr)))
            return '"' + body + '"'
        # intersect the body with a length bound: a single repeated class `(C)+` / `(C)*`
        m = re.fullmatch(r"\((\[(?:[^\]\\]|\\.)*\]|[A-Za-z0-9_]|\\.)\)([+*])", body)
        if m:
            cls, q = m.group(1), m.group(2)
            lo2 = max(lo, 1 if q == "+" else 0)
            cap = MAX_NESTED_ASCII if ("\\u" not in cls and "\\U" not in cls and
                                       not cls.startswith("[^")) else MAX_NESTED_SAFE
            hi2 = cap if hi is None or hi > cap else hi
            if lo2 <= hi2 and (hi is None or hi2 <= hi) and lo2 <= cap:
                return '"' + cls + ("{%d}" % lo2 if lo2 == hi2 else "{%d,%d}" % (lo2, hi2)) + '"'
        self.unsupported("length bounds together with pattern/format inside a structure",
                         "maxLength" if hi is not None else "minLength",
                         n.kp.get("maxLength" if hi is not None else "minLength", n.ptr))
        return '"' + body + '"'

    def enum_values(self, n: _Node) -> list:
        return [x for x in n.kw["enum"] if self.valid(n.raws, x)]

    def free_value(self, depth: int) -> str:
        """Any JSON value, containers nested at most ``depth`` levels."""
        key = ("free", depth)
        cache = self.__dict__.setdefault("_free_cache", {})
        if key in cache:
            return cache[key]
        scalars = [JSON_STRING, NUMBER, BOOLEAN, NULL]
        if depth <= 0:
            rx = "(" + "|".join(scalars) + ")"
        else:
            inner = self.free_value(depth - 1)
            arr = r"\[(" + inner + "(, " + inner + r")*)?\]"
            kv = JSON_STRING + ": " + inner
            obj = r"\{(" + kv + "(, " + kv + r")*)?\}"
            rx = "(" + "|".join(scalars + [arr, obj]) + ")"
        cache[key] = rx
        return rx
