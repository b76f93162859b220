"""JSON Schema front end: a schema becomes a flat list of :class:`Text` and :class:`Slot` pieces.

Output format is canonical JSON, like ``json.dumps`` with default separators:
``{"name": "Bob", "age": 3, "tags": ["a", "b"]}``; ``{}``; ``[]``. Objects list their properties
in the schema's ``properties`` order.

Layout: an object with at least one required property becomes scaffold text (``{"name":``) with
one slot per value; a value slot owns the single space after its colon. Optional properties are
slots that own their commas: ``("a": V, )?`` before the first required property, ``(, "x": V)?``
after one. Everything else is one slot whose regex is self-contained.

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
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import pathlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional

import jsonschema
from jsonschema import validators as _jsv

from ..errors import CompileLimitError, InvalidSchemaError, UnsupportedSchemaError, not_utf8
from .pieces import (JSON_CHAR, SAFE_CHAR, CharLength, Piece, Slot, SpecReport, Text,
                     regex_escape, string_slot_regex)
from .regex_parts import (ASCII_SAFE_CHAR, BOOLEAN, FORMAT_BODIES, INTEGER, NULL, NUMBER,
                          PatternUnsupported, integer_range_regex, number_range_regex,
                          translate_pattern_ex)

__all__ = ["schema_to_pieces", "canonical_json", "pieces_regex", "load_schema"]

JSON_STRING = '"' + JSON_CHAR + '*"'
ALL_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
ANNOTATIONS = {
    "title", "description", "default", "examples", "$comment", "$schema", "$id", "id",
    "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "contentSchema",
    "$defs", "definitions", "$anchor", "$dynamicAnchor", "$vocabulary", "discriminator",
    "nullable", "example",
}
STRING_KW = {"minLength", "maxLength", "pattern", "format"}
NUMBER_KW = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
ARRAY_KW = {"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains",
            "minContains", "maxContains", "unevaluatedItems"}
OBJECT_KW = {"properties", "required", "additionalProperties", "patternProperties",
             "propertyNames", "minProperties", "maxProperties", "dependentRequired",
             "dependentSchemas", "unevaluatedProperties"}
MAX_BRANCHES = 64          # anyOf x anyOf products
MAX_ITEM_UNROLL = 64       # counted repetition of array items
MAX_NESTED_SAFE = 32       # bounded SAFE_CHAR repetition in structural regexes
MAX_NESTED_ASCII = 256     # bounded ASCII_SAFE_CHAR repetition in structural regexes
MAX_REGEX_CHARS = 100_000  # default cap on one slot regex (see schema_to_pieces)


class _Recursion(Exception):
    """A $ref recursion went past max_depth on this path."""

    def __init__(self, pointer: str, ref: str):
        self.pointer = pointer
        self.ref = ref
        super().__init__(ref)


class _Unsat(Exception):
    """This (sub)schema admits nothing we can emit."""

    def __init__(self, msg: str, pointer: str, keyword: Optional[str] = None):
        self.msg = msg
        self.pointer = pointer
        self.keyword = keyword
        super().__init__(msg)


# ---------------------------------------------------------------------------------------------
# Loading


def _no_constant(name: str, pointer: str = ""):
    """NaN / Infinity are not JSON: a schema holding them could make us print non-JSON."""
    raise InvalidSchemaError(f"schema holds {name}, which is not JSON (RFC 8259 has no NaN or "
                             "Infinity)", pointer=pointer)


MAX_NESTING = 128
"""JSON nesting levels a schema may have (the deepest of the 2,786 maskbench-dev schemas has
63). Checked without recursion before anything walks the schema recursively, so a hostile schema
is a named error, not a RecursionError."""


def _check_json(root: Any) -> None:
    """The schema is a JSON value (a dict from Python may hold anything): string keys, finite
    numbers, JSON types only, at most ``MAX_NESTING`` deep. Iterative, so it runs before anything
    walks the schema recursively."""
    stack = [(root, "", 1)]
    while stack:
        v, ptr, d = stack.pop()
        if d > MAX_NESTING:
            raise _too_deep(f" (at {ptr})")
        if isinstance(v, dict):
            for k in v:
                if not isinstance(k, str):
                    raise InvalidSchemaError(f"object keys must be strings, not {k!r} "
                                             f"({type(k).__name__})", pointer=ptr or "/")
            stack += [(w, _ptr_join(ptr, k), d + 1) for k, w in v.items()]
        elif isinstance(v, list):
            stack += [(w, _ptr_join(ptr, i), d + 1) for i, w in enumerate(v)]
        elif isinstance(v, float) and not math.isfinite(v):
            _no_constant(repr(v), ptr or "/")
        elif v is not None and not isinstance(v, (str, int, float, bool)):
            raise InvalidSchemaError(f"a {type(v).__name__} is not a JSON value", pointer=ptr or "/")


def _too_deep(where: str = "") -> CompileLimitError:
    return CompileLimitError(f"the schema is nested more than {MAX_NESTING} levels deep{where}",
                             limit="nesting")


def _read_schema_file(path: pathlib.Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidSchemaError(f"cannot read schema file {path}: {exc}", pointer="") from exc
    except UnicodeDecodeError as exc:
        raise InvalidSchemaError(not_utf8(path, exc), pointer="") from None


def load_schema(spec: Any) -> dict | bool:
    """A schema from a dict/bool, a JSON string, or a path to a JSON file; checked to be a JSON
    value (string keys, finite numbers, at most ``MAX_NESTING`` deep)."""
    if isinstance(spec, (dict, bool)):
        _check_json(spec)
        return spec
    text = None
    if isinstance(spec, pathlib.Path):
        text = _read_schema_file(spec)
    elif isinstance(spec, str):
        stripped = spec.strip()
        if "\n" not in spec and len(spec) < 4096 and pathlib.Path(spec).is_file():
            text = _read_schema_file(pathlib.Path(spec))                # tiny.json, foo.json
        elif stripped in ("true", "false") or stripped.startswith(("{", "[", '"')) \
                or not stripped:
            text = spec
        else:
            path = pathlib.Path(spec)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidSchemaError(f"not JSON and not a readable file: {spec!r}",
                                         pointer="") from exc
            except UnicodeDecodeError as exc:
                raise InvalidSchemaError(not_utf8(path, exc), pointer="") from None
    else:
        raise InvalidSchemaError(f"a schema must be a dict, bool, JSON string or path, "
                                 f"not {type(spec).__name__}", pointer="")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise InvalidSchemaError(f"schema is not valid JSON: {exc.msg} at line {exc.lineno} "
                                 f"column {exc.colno}", pointer="") from exc
    if not isinstance(value, (dict, bool)):
        raise InvalidSchemaError("a schema must be a JSON object or boolean", pointer="")
    _check_json(value)
    return value


def _ptr_join(ptr: str, *parts: Any) -> str:
    for p in parts:
        ptr += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return ptr


def _validator_for(root: Any):
    cls = _jsv.validator_for(root, default=jsonschema.Draft202012Validator) \
        if isinstance(root, dict) else jsonschema.Draft202012Validator
    return cls


def _check_schema(root: Any) -> None:
    cls = _validator_for(root)
    try:
        cls.check_schema(root)
    except jsonschema.SchemaError as exc:
        path = list(exc.absolute_path)
        keyword = None
        if path and isinstance(path[-1], str):
            keyword = path[-1]
            path = path[:-1]
        # the failing value may be inside the keyword's value (e.g. required/0)
        ptr = ""
        for p in path:
            ptr = _ptr_join(ptr, p)
        kw = keyword
        # find the innermost keyword name on the path for a better message
        if kw is None or kw not in _KNOWN_KEYWORDS:
            for i in range(len(path) - 1, -1, -1):
                if isinstance(path[i], str) and path[i] in _KNOWN_KEYWORDS:
                    kw = path[i]
                    ptr = ""
                    for p in path[:i]:
                        ptr = _ptr_join(ptr, p)
                    break
        raise InvalidSchemaError(f"invalid schema: {exc.message}", pointer=ptr, keyword=kw) from None


_KNOWN_KEYWORDS = (ANNOTATIONS | STRING_KW | NUMBER_KW | ARRAY_KW | OBJECT_KW |
                   {"type", "enum", "const", "anyOf", "oneOf", "allOf", "not", "if", "then",
                    "else", "$ref", "$dynamicRef", "$recursiveRef", "dependencies",
                    "additionalItems", "x-max-tokens"})


# ---------------------------------------------------------------------------------------------
# Merged schema nodes


@dataclass
class _Sub:
    """A subschema reference: raw schemas to be merged (allOf), each with its pointer and the
    $ref path that led to it (for recursion bounds)."""

    parts: list  # [(raw, pointer, refs)]


@dataclass
class _Node:
    kw: dict = field(default_factory=dict)       # merged keyword values
    kp: dict = field(default_factory=dict)       # keyword -> pointer where it came from
    ptr: str = ""
    raws: list = field(default_factory=list)     # raw schemas merged (for jsonschema checks)
    refs: tuple = ()
    anyofs: list = field(default_factory=list)   # [(kind, [ _Sub ], pointer)]
    nots: list = field(default_factory=list)     # [(raw, pointer, refs)]
    false_at: Optional[str] = None               # a `false` schema was merged in

    def copy(self) -> "_Node":
        n = _Node(dict(self.kw), dict(self.kp), self.ptr, list(self.raws), self.refs,
                  list(self.anyofs), list(self.nots), self.false_at)
        for k in ("properties", "patternProperties", "dependentSchemas"):
            if k in n.kw:
                n.kw[k] = {kk: _Sub(list(v.parts)) for kk, v in n.kw[k].items()}
        return n


def _json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_eq(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _dec(v: Any) -> Decimal:
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


# ---------------------------------------------------------------------------------------------
# The compiler


class _Compiler:
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

    # -- errors -------------------------------------------------------------------------------

    def unsupported(self, msg: str, keyword: str, pointer: str) -> None:
        """Raise, or (lenient) record the dropped keyword and return so the caller ignores it."""
        if self.lenient:
            self.report.dropped.append((keyword, pointer))
            return
        raise UnsupportedSchemaError(msg, keyword=keyword, pointer=pointer)

    # -- references ---------------------------------------------------------------------------

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
        from urllib.parse import unquote
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

    # -- merging ------------------------------------------------------------------------------

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
            then = None
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

    # -- expanding applicators ----------------------------------------------------------------

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

    def check_sat(self, node: _Node) -> None:
        if node.false_at is not None:
            raise _Unsat("the schema `false` admits nothing", node.false_at)
        if "enum" in node.kw and not node.kw["enum"]:
            raise _Unsat("const/enum values conflict", node.kp.get("enum", node.ptr), "enum")
        if "type" in node.kw and not node.kw["type"]:
            raise _Unsat("types conflict", node.kp.get("type", node.ptr), "type")

    # oneOf disjointness -----------------------------------------------------------------------

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

    # -- top level: pieces --------------------------------------------------------------------

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
        return [self.slot(alts, lead, name, depth, node)]

    def max_tokens(self, node: _Node) -> Optional[int]:
        return node.kw.get("x-max-tokens")

    def slot(self, alts: list[_Node], lead: str, name: str, depth: int, node: _Node) -> Slot:
        ptr = node.ptr
        mt = node.kw.get("x-max-tokens")
        if mt is None:
            for a in alts:
                if a.kw.get("x-max-tokens"):
                    mt = a.kw["x-max-tokens"]
                    break
        if len(alts) == 1:
            s = self.string_slot(alts[0], lead)
            if s is not None:
                rx, length = s
                return Slot(regex=rx, kind="string", pointer=ptr, max_tokens=mt, length=length,
                            name=name)
        r = self.alts_regex(alts, depth)
        if r is None:
            raise _Unsat("no alternative can be emitted", ptr)
        rx, kind = r
        return Slot(regex=regex_escape(lead) + rx, kind=kind, pointer=ptr, max_tokens=mt,
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

    def string_slot(self, n: _Node, lead: str):
        """A top-level string slot with lengths as a counter: (regex, CharLength|None) or None."""
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
                return string_slot_regex(lead), None
            return string_slot_regex(lead), CharLength(lo, hi, "json_string", lead=lead)
        rx = regex_escape(lead) + '"' + body + '"'
        if lo == 0 and hi is None:
            return rx, None
        if escapes:
            return None  # fall back to counted repetition
        return rx, CharLength(lo, hi, "codepoints", offset=len(lead) + 2)

    # -- objects ------------------------------------------------------------------------------

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
                src_patterns = []
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
                out.append(Slot(regex=body, kind=kind, pointer=pptr, name=name, optional=True,
                                max_tokens=child.kw.get("x-max-tokens"),
                                size=self.size_hint(child)))
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

    # -- regexes for values -------------------------------------------------------------------

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
        key = (tuple((id(r), refs) for r, _, refs in sub.parts), depth, self.budget)
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
        free_items = items_sub is None
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


_IGNORED_FORMATS: set = set()


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False  # conservative: treat as not evaluated


def _width(body: str) -> tuple[int, int]:
    from .regex_parts import _sre_p
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
                comp: _Compiler) -> str:
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


def _literal_texts(x: Any) -> list[str]:
    """Canonical JSON texts of an enum/const value (an integral float also as an integer)."""
    s = json.dumps(x, ensure_ascii=False)
    out = [s]
    if isinstance(x, float) and math.isfinite(x) and x == int(x):
        out.append(str(int(x)))
    if isinstance(x, int) and not isinstance(x, bool):
        pass
    return out


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
    of free-form values. ``max_regex_chars`` caps each slot regex: optional properties of nested
    objects are left out to stay under it, else :class:`CompileLimitError`. ``lenient`` drops keywords we cannot enforce, recording them in
    ``report.dropped``. Only ``whitespace="canonical"`` is supported.
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
    """The whole-output regex: Text escaped, Slot regexes concatenated.

    With ``lengths=True`` slot length bounds are encoded too, with Python-only syntax (counted
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
