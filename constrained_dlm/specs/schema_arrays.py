"""JSON Schema front end, part 4: arrays: items, prefixItems, counted repetition, contains and
uniqueItems as regexes.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from ..errors import CompileLimitError, UnsupportedSchemaError
from .pattern_translate import _sre_p
from .pieces import JSON_CHAR, SAFE_CHAR, regex_escape
from .regex_parts import ASCII_SAFE_CHAR
from .schema_load import (
    MAX_ITEM_UNROLL,
    MAX_NESTED_ASCII,
    MAX_NESTED_SAFE,
    _json_eq,
    _literal_texts,
    _Node,
    _Recursion,
    _Sub,
    _Unsat,
)

_IGNORED_FORMATS: set = set()


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False  # conservative: treat as not evaluated


def _width(body: str) -> tuple[int, int]:
    lo, hi = _sre_p.parse(body).getwidth()
    return lo, hi


def _bounded(lo: int, hi: Optional[int], char: str, plain: bool = False) -> str:
    """``char`` repeated lo..hi times inside a structural regex, keeping automata small: short
    bounds repeat SAFE_CHAR (escape-free), longer ones printable ASCII."""
    if hi is None:
        if lo == 0:
            return "(" + char + ")*"
        if lo <= MAX_NESTED_SAFE:
            return SAFE_CHAR + "{%d}" % lo + "(" + char + ")*"
        return ASCII_SAFE_CHAR + "{%d}" % lo + "(" + char + ")*" if lo <= MAX_NESTED_ASCII \
            else ASCII_SAFE_CHAR + "{%d,}" % lo
    if hi <= MAX_NESTED_SAFE:
        return SAFE_CHAR + ("{%d}" % lo if lo == hi else "{%d,%d}" % (lo, hi))
    if hi <= MAX_NESTED_ASCII:
        return ASCII_SAFE_CHAR + ("{%d}" % lo if lo == hi else "{%d,%d}" % (lo, hi))
    raise UnsupportedSchemaError(f"maxLength {hi} inside a structure is too large to unroll",
                                 keyword="maxLength", pointer=None)


def _in_order_subsets(items: list[tuple[str, bool]]) -> str:
    """Regex for the members written in order, each optional unless required, separated by ", ".

    Linear construction: X_i = nonempty valid choice among items[0..i]."""
    if not items:
        return ""
    x: Optional[str] = None      # nonempty prefix choice
    empty_ok = True
    for rx, req in items:
        if req:
            alts = []
            if x is not None:
                alts.append(x + ", " + rx)
            if empty_ok:
                alts.append(rx)
            x = alts[0] if len(alts) == 1 else "(" + "|".join(alts) + ")"
            empty_ok = False
        else:
            alts = []
            if x is not None:
                alts.append(x + "(, " + rx + ")?")
            if empty_ok:
                alts.append(rx)
            x = alts[0] if len(alts) == 1 else "(" + "|".join(alts) + ")"
    if empty_ok:
        return "(" + x + ")?"
    return x  # type: ignore[return-value]


def _array_body(pre: list[str], rest: Optional[str], lo: int, hi: Optional[int], n: _Node,
                comp: Any) -> str:
    """Items: pre[0], pre[1], ... then rest repeated; count in [lo, hi]."""
    k = len(pre)
    if hi == 0:
        return ""
    # build from the end: tail(i) = regex for items i.. given i items already written (i>=1)

    def rest_tail(i: int) -> str:
        """After i items (i >= k), items of `rest` with total count in [lo, hi]."""
        need = max(lo - i, 0)
        if rest is None:
            return ""
        if hi is None:
            if need == 0:
                return "(, " + rest + ")*"
            if need > MAX_ITEM_UNROLL:
                where = n.kp.get("minItems", n.ptr) or "/"
                raise CompileLimitError(     # a limit, like minLength past max_states: exit 3
                    f"minItems {lo} at {where} asks for more items than the compiler unrolls "
                    f"(MAX_ITEM_UNROLL={MAX_ITEM_UNROLL})", limit="minItems", value=lo)
            return "(, " + rest + "){%d,}" % need
        room = hi - i
        if room <= 0:
            return ""
        if room > MAX_ITEM_UNROLL:
            comp.unsupported(f"maxItems {hi} too large to unroll", "maxItems",
                             n.kp.get("maxItems", n.ptr))
            return "(, " + rest + "){%d,}" % need if need else "(, " + rest + ")*"
        if need == room:
            return "(, " + rest + "){%d}" % need
        return "(, " + rest + "){%d,%d}" % (need, room)

    def tail(i: int) -> str:
        """Regex after i >= 1 items."""
        if hi is not None and i >= hi:
            return ""
        if i >= k:
            return rest_tail(i)
        nxt = ", " + pre[i] + tail(i + 1)
        if i >= lo:
            return "(" + nxt + ")?"
        return nxt

    if k > 0:
        first = pre[0] + tail(1)
    elif rest is not None:
        first = rest + rest_tail(1)
    else:
        return ""
    if lo == 0:
        return "(" + first + ")?"
    return first


class _Arrays:
    """Methods of :class:`~.json_schema._Compiler` (a mixin: state lives there)."""

    def array_regex(self, n: _Node, depth: int) -> Optional[str]:
        outer = self.budget
        self.budget = max(outer // 2, 1000)
        try:
            return self._array_regex(n, depth)
        finally:
            self.budget = outer

    def _array_regex(self, n: _Node, depth: int) -> Optional[str]:
        kw = n.kw
        lo = kw.get("minItems", 0)
        hi = kw.get("maxItems")
        if hi is not None and lo > hi:
            raise _Unsat("minItems > maxItems", n.kp.get("minItems", n.ptr), "minItems")
        prefix, items_sub = self.array_positions(n)
        contains = kw.get("contains")
        # regex for each position: prefix positions, then the rest
        rest_rx: Optional[str]
        if items_sub is not None:
            try:
                rest = self.sub_regex(items_sub, depth + 1)
            except (_Recursion, _Unsat):
                rest = None
            rest_rx = rest[0] if rest else None
        else:
            if depth >= self.max_depth and not prefix:
                rest_rx = None
            else:
                rest_rx = self.free_value(self.max_depth - depth - 1)
        pre_rx = []
        for i, sub in enumerate(prefix):
            try:
                r = self.sub_regex(sub, depth + 1)
            except (_Recursion, _Unsat):
                r = None
            if r is None:
                break  # instances stop before this position
            pre_rx.append(r[0])
        if contains is not None and kw.get("minContains", 1) == 0:
            contains = None
        if contains is not None:
            lo = max(lo, 1)
            base = list(prefix[0].parts) if prefix else (list(items_sub.parts) if items_sub else [])
            first = _Sub(list(contains.parts) + base)
            r = self.value_regex(self.node(first), depth + 1)
            if r is None:
                raise _Unsat("contains admits nothing", n.kp.get("contains", n.ptr), "contains")
            if prefix:
                pre_rx = [r[0]] + pre_rx[1:]
            else:
                pre_rx = [r[0]]
                prefix = [first]
        if kw.get("uniqueItems") and hi is not None and hi <= 1:
            pass
        elif kw.get("uniqueItems") and items_sub is not None and not prefix:
            item = self.node(items_sub)
            if "enum" in item.kw:
                vals = []
                for v in self.enum_values(item):
                    if not any(_json_eq(v, w) for w in vals):
                        vals.append(v)
                rx_items = [(regex_escape(s), False) for v in vals for s in _literal_texts(v)[:1]]
                body = _in_order_subsets(rx_items)
                if lo >= 1:
                    body = body[1:-2] if body.startswith("(") and body.endswith(")?") else body
                return r"\[" + body + r"\]"
        # positions: pre_rx[0..k-1] then rest_rx repeated
        k = len(pre_rx)
        if k < len(prefix):
            # truncated prefix: at most k items
            hi = k if hi is None else min(hi, k)
        if lo > k and rest_rx is None:
            raise _Unsat("array needs items that admit nothing", n.kp.get("minItems", n.ptr),
                         "minItems")
        if rest_rx is None:
            hi = k if hi is None else min(hi, k)
        if hi is not None and lo > hi:
            raise _Unsat("array length impossible", n.kp.get("minItems", n.ptr), "minItems")
        return r"\[" + _array_body(pre_rx, rest_rx, lo, hi, n, self) + r"\]"

    def bounded(self, lo: int, hi: Optional[int], n: _Node) -> str:
        if hi is not None and hi > MAX_NESTED_ASCII and lo <= MAX_NESTED_ASCII:
            hi = MAX_NESTED_ASCII  # sound narrowing: shorter strings only
        elif hi is not None and hi > MAX_NESTED_ASCII:
            self.unsupported(f"maxLength {hi} inside a structure is too large to unroll",
                             "maxLength", n.kp.get("maxLength", n.ptr))
            hi = None
        if hi is None and lo > MAX_NESTED_ASCII:
            self.unsupported(f"minLength {lo} inside a structure is too large to unroll",
                             "minLength", n.kp.get("minLength", n.ptr))
            lo = 0
        return _bounded(lo, hi, JSON_CHAR)

    def array_positions(self, n: _Node):
        """Per-position subschemas (prefix list) and the subschema of the remaining items (None:
        free), honouring that `items` applies after its own schema's prefixItems only."""
        kw = n.kw
        prefix0: list = kw.get("prefixItems", [])
        sources = list(kw.get("_item_sources", []))
        for plen, sub in kw.get("_ueitems", []):
            sources.append((plen, sub))
        k = max([len(prefix0)] + [p for p, _ in sources])
        prefix = []
        for i in range(k):
            parts = list(prefix0[i].parts) if i < len(prefix0) else []
            for plen, sub in sources:
                if plen <= i:
                    parts.extend(sub.parts)
            prefix.append(_Sub(parts or [(True, n.ptr, n.refs)]))
        rest_parts = [pt for _, sub in sources for pt in sub.parts]
        return prefix, (_Sub(rest_parts) if rest_parts else None)
