"""JSON Schema front end: a schema becomes a flat list of :class:`Text` and :class:`HoleSpec` pieces.

Output format is canonical JSON, like ``json.dumps`` with default separators:
``{"name": "Bob", "age": 3, "tags": ["a", "b"]}``; ``{}``; ``[]``. Objects list their properties
in the schema's ``properties`` order.

Layout: an object with at least one required property becomes scaffold text (``{"name":``) with
one hole spec per value; a value's hole spec owns the single space after its colon. Optional
properties are hole specs that own their commas: ``("a": V, )?`` before the first required
property, ``(, "x": V)?`` after one. Everything else is one hole spec whose regex is
self-contained.

Soundness first: every string the pieces accept is valid against the schema (as checked by
``jsonschema`` with format assertions). Keywords that restrict values are enforced exactly, or
narrowed soundly (we choose what to emit), or rejected with :class:`UnsupportedSchemaError`
(``lenient=True`` drops them and records them in ``report.dropped``). Sound narrowings, which
reject some valid instances but never produce an invalid one:

- ``additionalProperties`` true/schema/absent with listed ``properties``: only listed properties
  are emitted;
- ``anyOf``/``oneOf`` branches we cannot express are left out (when others remain), recursion
  past ``max_depth`` keeps only the non-recursive alternatives;
- ``if``/``then``/``else``: we emit only instances that satisfy ``if`` and ``then``;
- ``dependentRequired``/``dependentSchemas``/``minProperties``/``maxProperties``: properties are
  made required or left out until the constraint holds for every emitted object;
- ``contains``: the first item satisfies the ``contains`` schema;
- ``uniqueItems`` on an enum item type: items appear in enum order, each at most once;
- patterns: ``\\d`` is ``[0-9]``, ``\\w`` is ``[A-Za-z0-9_]``, ``\\s`` is a space; ``.`` and
  negated classes exclude characters that need a JSON escape; formats are asserted with
  conservative regexes (no leap seconds, no IPv4-in-IPv6, URIs without percent-escapes, at most
  3 hostname labels);
- numbers with bounds are written without exponent; integers never as ``1.0``;
- strings nested inside a structural regex (array items, optional properties) write no escapes
  when they have length bounds (bounded repetition of a simple class).

Layout of the front end: this module holds the compiler's state, its top-level walk and the
public functions; ``schema_load`` reads and checks schemas and defines the merged nodes;
``schema_merge`` resolves ``$ref`` and merges subschemas, ``schema_branches`` checks
satisfiability and ``oneOf`` disjointness; ``schema_objects``, ``schema_arrays``
and ``schema_values`` build the pieces and regexes of each kind of value (mixins of
:class:`_Compiler`).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Optional

from ..errors import CompileLimitError, InvalidSchemaError, UnsupportedSchemaError
from .pieces import (
    JSON_CHAR,
    CharLength,
    Piece,
    HoleSpec,
    SpecReport,
    Text,
    regex_escape,
    string_hole_regex,
)
from .schema_arrays import _Arrays
from .schema_load import (
    MAX_NESTING,
    MAX_REGEX_CHARS,
    _check_schema,
    _Node,
    _Recursion,
    _Sub,
    _Unsat,
    _validator_for,
    load_schema,
)
from .schema_branches import _Branches
from .schema_merge import _Merging
from .schema_objects import _Objects
from .schema_values import _Values

__all__ = ["schema_to_pieces", "canonical_json", "pieces_regex", "load_schema"]


class _Compiler(_Merging, _Branches, _Objects, _Arrays, _Values):
    """One schema being compiled: the state (root, refs, report, caches) and the top-level
    walk; the keyword families live in the mixins (schema_merge, schema_objects,
    schema_arrays, schema_values)."""

    def __init__(self, root: Any, lenient: bool, max_depth: int, report: SpecReport,
                 max_regex_chars: int = MAX_REGEX_CHARS):
        self.max_regex_chars = max_regex_chars
        self.budget = max_regex_chars  # size the regex being built should aim for
        self.root = root
        self.lenient = lenient
        self.max_depth = max_depth
        self.report = report
        cls = _validator_for(root)
        self._validator_cls = cls
        self._root_validator = cls(root, format_checker=cls.FORMAT_CHECKER)

    def top(self) -> list[Piece]:
        try:
            root_node = self.node_of(self.root, "", ())
            pieces = self.pieces(root_node, "", "", 0)
        except _Recursion as exc:
            raise UnsupportedSchemaError(
                f"recursive $ref {exc.ref!r} has no non-recursive alternative within "
                f"max_depth={self.max_depth}", keyword="$ref", pointer=exc.pointer) from None
        except _Unsat as exc:
            raise UnsupportedSchemaError(f"unsatisfiable schema: {exc.msg}",
                                         keyword=exc.keyword, pointer=exc.pointer) from None
        return _merge_texts(pieces)

    def pieces(self, node: _Node, lead: str, name: str, depth: int) -> list[Piece]:
        alts = self.expand(node)
        for a in alts:
            self.check_sat(a)
        if len(alts) == 1:
            n = alts[0]
            plan = self.object_plan(n, depth, scaffold=True)
            if plan is not None:
                return self.object_pieces(n, plan, lead, depth)
        return [self.hole_spec(alts, lead, name, depth, node)]

    def max_tokens(self, node: _Node) -> Optional[int]:
        return node.kw.get("x-max-tokens")

    def hole_spec(self, alts: list[_Node], lead: str, name: str, depth: int, node: _Node) -> HoleSpec:
        ptr = node.ptr
        mt = node.kw.get("x-max-tokens")
        if mt is None:
            for a in alts:
                if a.kw.get("x-max-tokens"):
                    mt = a.kw["x-max-tokens"]
                    break
        if len(alts) == 1:
            s = self.string_hole(alts[0], lead)
            if s is not None:
                rx, length = s
                return HoleSpec(regex=rx, kind="string", pointer=ptr, max_tokens=mt, length=length,
                            name=name)
        r = self.alts_regex(alts, depth)
        if r is None:
            raise _Unsat("no alternative can be emitted", ptr)
        rx, kind = r
        return HoleSpec(regex=regex_escape(lead) + rx, kind=kind, pointer=ptr, max_tokens=mt,
                    name=name, size=self.size_hint(alts[0]) if len(alts) == 1 else None)

    def size_hint(self, n: _Node) -> Optional[int]:
        """An upper bound on the tokens a value of ``n`` takes, where the schema bounds its
        length (a token holds at least one character): a bounded array of short strings then
        gets a hole that fits it rather than the kind's default. None: unbounded or unknown."""
        kw = n.kw
        if "enum" in kw or "const" in kw:
            vals = kw["enum"] if "enum" in kw else [kw["const"]]
            return max((len(json.dumps(v, ensure_ascii=False)) for v in vals), default=None)
        types = kw.get("type") or set()
        t = next(iter(types)) if len(types) == 1 else None
        if t == "boolean":
            return 5
        if t == "integer" and isinstance(kw.get("minimum"), int) and isinstance(kw.get("maximum"), int):
            return max(len(str(kw["minimum"])), len(str(kw["maximum"])))
        if t == "string" and isinstance(kw.get("maxLength"), int) and not ({"pattern", "format"} & set(kw)):
            return kw["maxLength"] + 3       # as string holes: a char per token, quotes, lead
        if t == "array" and isinstance(kw.get("maxItems"), int):
            prefix, items = self.array_positions(n)
            if prefix or items is None:
                return None
            try:
                h = self.size_hint(self.node(items))
            except (_Recursion, _Unsat, InvalidSchemaError, UnsupportedSchemaError,
                    CompileLimitError):      # a hint, never an error
                return None
            return None if h is None else 2 + kw["maxItems"] * (h + 2)
        return None

    def string_hole(self, n: _Node, lead: str):
        """A top-level string hole with lengths as a counter: (regex, CharLength|None) or None."""
        if "enum" in n.kw:
            return None
        types = self.types(n)
        if types != {"string"} or self.nots_left(n, types):
            return None
        self.check_unhandled(n, types)
        info = self.string_info(n)
        if info is None:
            return None
        body, escapes, lo, hi = info
        if body is None:
            if lo == 0 and hi is None:
                return string_hole_regex(lead), None
            return string_hole_regex(lead), CharLength(lo, hi, "json_string", lead=lead)
        rx = regex_escape(lead) + '"' + body + '"'
        if lo == 0 and hi is None:
            return rx, None
        if escapes:
            return None  # fall back to counted repetition
        return rx, CharLength(lo, hi, "codepoints", offset=len(lead) + 2)


def _merge_texts(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for p in pieces:
        if isinstance(p, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + p.text)
        elif isinstance(p, Text) and p.text == "":
            continue
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------
# Public API


def schema_to_pieces(schema: dict | bool | str | pathlib.Path, *, lenient: bool = False,
                     max_depth: int = 3, report: SpecReport | None = None,
                     whitespace: str = "canonical",
                     max_regex_chars: int = MAX_REGEX_CHARS) -> list[Piece]:
    """Compile a JSON Schema into pieces (see the module docstring).

    ``max_depth`` bounds $ref recursion (expansions of one reference on a path) and the nesting
    of free-form values. ``max_regex_chars`` caps each hole spec's regex: optional properties of
    nested objects are left out to stay under it, else :class:`CompileLimitError`. ``lenient``
    drops keywords we cannot enforce, recording them in ``report.dropped``. Only ``whitespace="canonical"`` is supported.
    """
    if whitespace != "canonical":
        raise ValueError("only whitespace='canonical' is supported")
    if not isinstance(max_depth, int) or max_depth < 0:
        raise ValueError("max_depth must be a non-negative integer")
    root = load_schema(schema)
    try:
        _check_schema(root)
        if report is None:
            report = SpecReport()
        comp = _Compiler(root, lenient, max_depth, report, max_regex_chars)
        return comp.top()
    except RecursionError:     # a backstop: _check_json should have caught it first
        raise CompileLimitError(f"the schema is nested too deep to compile (more than Python's "
                                f"recursion limit allows; keep it under {MAX_NESTING} levels)",
                                limit="nesting") from None


def pieces_regex(pieces: list[Piece], *, lengths: bool = False) -> str:
    """The whole-output regex: Text escaped, HoleSpec regexes concatenated.

    With ``lengths=True`` hole length bounds are encoded too, with Python-only syntax (counted
    repetition / lookahead): use it for checks with ``re``, not for automata."""
    out = []
    for p in pieces:
        if isinstance(p, Text):
            out.append(regex_escape(p.text))
            continue
        rx = p.regex
        if lengths and p.length is not None:
            L = p.length
            rep = "{%d,%s}" % (L.min, "" if L.max is None else L.max)
            if L.mode == "json_string":
                rx = regex_escape(L.lead) + '"' + JSON_CHAR + rep + '"'
            else:
                # offset = lead + 2 quotes; count code points between the quotes
                pre = "." * max(L.offset - 2, 0)
                rx = "(?=" + pre + '"[^"]' + rep + '")' + rx
        out.append("(?:" + rx + ")")
    return "".join(out)


def canonical_json(instance: Any, schema: Any = True) -> str:
    """Serialise ``instance`` the way our pieces write it: object keys in the schema's
    ``properties`` order (following $ref/allOf and the first matching anyOf/oneOf branch), then
    the others in instance order; separators ", " and ": "; non-ASCII unescaped."""
    root = load_schema(schema) if not isinstance(schema, (dict, bool)) else schema
    comp = _Compiler(root, True, 10 ** 6, SpecReport())
    return _canon(comp, instance, [(root, "", ())], 0)


def _canon(comp: _Compiler, x: Any, parts: list, depth: int) -> str:
    if not isinstance(x, (dict, list)):
        return json.dumps(x, ensure_ascii=False)
    props: dict = {}
    prefix: list = []
    items: Optional[list] = None
    addl: Optional[list] = None
    if depth < 200:
        try:
            node = comp.node(_Sub(list(parts)))
            for _ in range(16):  # follow the first anyOf/oneOf branch the instance matches
                if not node.anyofs:
                    break
                nd = node.copy()
                kind, branches, aptr = nd.anyofs.pop(0)
                for br in branches:
                    try:
                        if comp._sub_validator({"allOf": [p[0] for p in br.parts]}).is_valid(x):
                            for raw, ptr, refs in br.parts:
                                comp.merge_raw(nd, raw, ptr, refs)
                            break
                    except Exception:
                        continue
                node = nd
            props = {k: v.parts for k, v in node.kw.get("properties", {}).items()}
            prefix = [s.parts for s in node.kw.get("prefixItems", [])]
            if "items" in node.kw:
                items = node.kw["items"].parts
            if "additionalProperties" in node.kw:
                addl = node.kw["additionalProperties"].parts
        except Exception:
            pass
    anything = [(True, "", ())]
    if isinstance(x, dict):
        keys = [k for k in props if k in x] + [k for k in x if k not in props]
        body = ", ".join(
            json.dumps(k, ensure_ascii=False) + ": " +
            _canon(comp, x[k], props.get(k, addl or anything), depth + 1) for k in keys)
        return "{" + body + "}"
    out = []
    for i, v in enumerate(x):
        p = prefix[i] if i < len(prefix) else (items or anything)
        out.append(_canon(comp, v, p, depth + 1))
    return "[" + ", ".join(out) + "]"

