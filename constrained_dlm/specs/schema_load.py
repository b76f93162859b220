"""JSON Schema front end, part 1: reading a schema (file, JSON checks, metaschema), the
merged node types and the constants every part shares.
"""

from __future__ import annotations

import json
import math
import pathlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional

import jsonschema
from jsonschema import validators as _jsv

from ..automata.components import declare_component
from ..errors import CompileLimitError, InvalidSchemaError, not_utf8
from .metaschema import surely_valid_2020_12
from .pieces import JSON_CHAR

JSON_STRING = '"' + JSON_CHAR + '*"'
declare_component(JSON_STRING)    # structures reuse its lift for the bodies of string members
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
MAX_REGEX_CHARS = 100_000  # default cap on one hole spec's regex (see schema_to_pieces)


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
        p = str(p)
        if "~" in p or "/" in p:
            p = p.replace("~", "~0").replace("/", "~1")
        ptr = f"{ptr}/{p}"
    return ptr


def _validator_for(root: Any):
    cls = _jsv.validator_for(root, default=jsonschema.Draft202012Validator) \
        if isinstance(root, dict) else jsonschema.Draft202012Validator
    return cls


def _check_schema(root: Any) -> None:
    cls = _validator_for(root)
    if cls is jsonschema.Draft202012Validator and surely_valid_2020_12(root):
        return                                    # the same answer, several times faster
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


def _literal_texts(x: Any) -> list[str]:
    """Canonical JSON texts of an enum/const value (an integral float also as an integer)."""
    s = json.dumps(x, ensure_ascii=False)
    out = [s]
    if isinstance(x, float) and math.isfinite(x) and x == int(x):
        out.append(str(int(x)))
    if isinstance(x, int) and not isinstance(x, bool):
        pass
    return out
