"""Spec stage: document templates — literal text with typed holes and references to a record.

A pipeline maps records to filled documents: the text around the holes is fixed, each hole has a
type, and every hole is filled in ONE denoising run, so each sees all the others and the text
after it. Text form (a file a user writes)::

    Order {{@order.id}} for {{@customer}}
    Status: {{ status: choice ["shipped", "delayed", "lost"] }}
    Rating: {{ rating: int min=1 max=5 }}
    Code: {{ code: regex "[A-Z]{3}-[0-9]{4}" }}
    Summary: {{ summary: text max_tokens=40 }}
    Details: {{ details: json schema="details.schema.json" }}
    Query: {{ query: grammar "sql" start="select" max_tokens=48 }}

- ``{{ name: kind [value] key=value ... }}`` is a hole. Values are JSON literals (strings, numbers,
  true / false / null, lists, objects) or bare words; nothing is ever evaluated.
- ``{{@path.to.field}}`` inserts a field of the input record as literal text (lists by index:
  ``items.0``); strings as they are, other values as JSON.
- ``\\{{`` writes a literal ``{{``.

Hole kinds (every kind takes ``max_tokens``, the hole's token budget):

========== ============================================ =====================================
kind       arguments                                    the value is
========== ============================================ =====================================
text       ``multiline`` (default true)                 any text (one line if multiline=false)
string     ``min_length``, ``max_length``                one line of text, length-bounded
int        ``min``, ``max``                              an integer in range
number     ``min``, ``max``                              a decimal number in range
bool                                                    ``true`` / ``false``
choice     a list of strings                            one of the strings
regex      the pattern                                  a fullmatch of the pattern
json       ``schema`` (inline object or a file path)    JSON valid under the schema
grammar    grammar name or .lark path, ``start``,       a sentence of the lark grammar
           ``max_depth``
========== ============================================ =====================================

The Python builder makes the same thing::

    doc = (Document().text("Status: ").choice("status", ["shipped", "delayed"])
           .text("\\nRating: ").int("rating", min=1, max=5).text("\\n"))

Errors (:class:`TemplateError`) name the line, the column and the hole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..automata.byte_dfa import check_regex_syntax
from ..errors import SpecError, ValidationFailure, not_utf8
from . import linear_match
from .grammar import grammar_finisher, load_grammar
from .json_check import json_finisher
from .json_schema import schema_to_pieces
from .pieces import Piece, Slot, Text, regex_escape
from .pydantic_model import pydantic_to_schema

__all__ = ["Document", "Field", "Ref", "TemplateError", "KINDS", "render_refs"]

KINDS = ("text", "string", "int", "number", "bool", "choice", "regex", "json", "grammar")
_ARGS = {
    "text": {"multiline"}, "string": {"min_length", "max_length"}, "int": {"min", "max"},
    "number": {"min", "max"}, "bool": set(), "choice": {"options"}, "regex": {"pattern"},
    "json": {"schema"}, "grammar": {"grammar", "start", "max_depth"},
}
_POSITIONAL = {"choice": "options", "regex": "pattern", "grammar": "grammar", "json": "schema"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class TemplateError(SpecError):
    """A document template is malformed, or a record does not fit it; names line, column, hole."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 hole: str | None = None, source: str = "<template>", hint: str | None = None):
        self.line, self.column, self.hole, self.source = line, column, hole, source
        where = source
        if line is not None:
            where += f":{line}:{column}"
        if hole:
            where += f" (hole {hole!r})"
        super().__init__(f"{where}: {message}", hint=hint)


@dataclass(frozen=True)
class Ref:
    """A reference to a field of the input record, written as literal text."""

    path: str
    line: int | None = None
    column: int | None = None

    def lookup(self, record: Any, source: str = "<template>") -> str:
        cur = record
        for key in self.path.split("."):
            if isinstance(cur, dict) and key in cur:
                cur = cur[key]
            elif isinstance(cur, list) and key.isdigit() and int(key) < len(cur):
                cur = cur[int(key)]
            else:
                raise TemplateError(f"the record has no field {self.path!r} (missing {key!r})",
                                    line=self.line, column=self.column, source=source)
        return cur if isinstance(cur, str) else json.dumps(cur, ensure_ascii=False)


@dataclass(frozen=True, eq=False)
class Field:
    """A typed hole."""

    name: str
    kind: str
    args: tuple = ()                     # sorted (key, value) pairs, values JSON-like
    max_tokens: int | None = None
    line: int | None = None
    column: int | None = None

    @property
    def arg(self) -> dict:
        return dict(self.args)

    def error(self, message: str, source: str = "<template>", hint: str | None = None):
        return TemplateError(message, line=self.line, column=self.column, hole=self.name,
                             source=source, hint=hint)

    # -- what the compile stage needs ---------------------------------------------------------

    def pieces(self, base_dir: Path | None, source: str) -> list[Piece]:
        """Text and slots for this hole (grammar holes are compiled apart: see ``grammar``)."""
        a, k = self.arg, self.kind
        slot_kind, regex = "regex", None
        if k == "text":
            regex, slot_kind = ("(?s:.*)" if a.get("multiline", True) else "[^\\n]*"), "any"
        elif k == "string":
            lo, hi = a.get("min_length", 0), a.get("max_length")
            if not isinstance(lo, int) or lo < 0 or (hi is not None and
                                                       (not isinstance(hi, int) or hi < lo)):
                raise self.error("min_length / max_length must be integers with 0 <= min <= max",
                                 source)
            regex, slot_kind = f"[^\\n]{{{lo},{'' if hi is None else hi}}}", "string"
        elif k in ("int", "number", "bool", "json"):
            schema = self._schema(base_dir, source)
            try:
                pieces = schema_to_pieces(schema)
            except SpecError as e:
                raise self.error(str(e), source) from None
            return [p if isinstance(p, Text) else Slot(
                regex=p.regex, kind=p.kind, pointer=p.pointer, length=p.length,
                name=f"{self.name}{p.pointer}" if p.pointer else self.name,
                max_tokens=self.max_tokens if len(pieces) == 1 else p.max_tokens)
                for p in pieces]
        elif k == "choice":
            opts = a.get("options")
            if not (isinstance(opts, list) and opts and all(isinstance(o, str) and o for o in opts)):
                raise self.error("choice needs a non-empty list of non-empty strings, e.g. "
                                 'choice ["yes", "no"]', source)
            regex, slot_kind = "(" + "|".join(regex_escape(o) for o in opts) + ")", "enum"
        elif k == "regex":
            regex = a.get("pattern")
            if not isinstance(regex, str):
                raise self.error('regex needs a pattern string, e.g. regex "[0-9]{4}"', source)
            try:
                check_regex_syntax(regex)
            except SpecError as e:
                raise self.error(str(e), source) from None
        else:                                                   # pragma: no cover
            raise self.error(f"kind {k!r} has no pieces", source)
        return [Slot(regex=regex, kind=slot_kind, max_tokens=self.max_tokens, name=self.name)]

    def _schema(self, base_dir: Path | None, source: str):
        a, k = self.arg, self.kind
        if k == "bool":
            return {"type": "boolean"}
        if k in ("int", "number"):
            s: dict = {"type": "integer" if k == "int" else "number"}
            for key, kw in (("min", "minimum"), ("max", "maximum")):
                v = a.get(key)
                if v is not None:
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise self.error(f"{key} must be a number, not {v!r}", source)
                    s[kw] = v
            return s
        schema = a.get("schema")
        if isinstance(schema, str):
            path = Path(schema) if base_dir is None else base_dir / schema
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except OSError as e:
                raise self.error(f"cannot read the schema file {str(path)!r}: {e.strerror}",
                                 source) from None
            except UnicodeDecodeError as e:
                raise self.error(not_utf8(path, e), source) from None
            except json.JSONDecodeError as e:
                raise self.error(f"the schema file {str(path)!r} is not JSON: {e}", source) \
                    from None
        if isinstance(schema, (dict, bool)):
            return schema
        raise self.error('json needs schema={...} or schema="file.json"', source)

    def grammar(self, base_dir: Path | None, source: str):
        """The hole's Grammar (grammar kind only)."""
        a = self.arg
        name = a.get("grammar")
        if not isinstance(name, str):
            raise self.error('grammar needs a grammar name or .lark path, e.g. grammar "sql"',
                             source)
        if base_dir is not None and name.endswith(".lark") and not Path(name).is_absolute():
            name = str(base_dir / name)
        try:
            return load_grammar(name, start=a.get("start"))
        except SpecError as e:
            raise self.error(str(e), source) from None

    def check(self, text: str, base_dir: Path | None = None, source: str = "<template>"):
        """The hole's value from its text, checked independently of the automata (a failure
        is a library bug and raises ValidationFailure)."""
        a, k = self.arg, self.kind

        def bad(why):
            return ValidationFailure(f"hole {self.name!r}: {why}: {text[:120]!r}")
        if k == "text":
            if not a.get("multiline", True) and "\n" in text:
                raise bad("a newline in a one-line text hole")
            return text
        if k == "string":
            hi = a.get("max_length")
            if "\n" in text or len(text) < a.get("min_length", 0) or (hi is not None and
                                                                      len(text) > hi):
                raise bad("string out of bounds")
            return text
        if k in ("int", "number"):
            try:
                v = Decimal(text) if k == "number" else int(text)
            except (ValueError, InvalidOperation):
                raise bad(f"not an {k}") from None
            if (a.get("min") is not None and v < Decimal(str(a["min"]))) or \
                    (a.get("max") is not None and v > Decimal(str(a["max"]))):
                raise bad("out of range")
            return v if k == "int" else (int(v) if v == v.to_integral_value() and "." not in
                                         text and "e" not in text.lower() else float(v))
        if k == "bool":
            if text not in ("true", "false"):
                raise bad("not true / false")
            return text == "true"
        if k == "choice":
            if text not in a["options"]:
                raise bad("not one of the choices")
            return text
        if k == "regex":
            if not linear_match.fullmatch(a["pattern"], text):
                raise bad("does not fullmatch the pattern")
            return text
        if k == "json":
            return json_finisher(self._schema(base_dir, source))(text)
        if k == "grammar":
            return grammar_finisher(self.grammar(base_dir, source))(text)
        raise bad(f"unknown kind {k}")                         # pragma: no cover


@dataclass
class Document:
    """Literal text, typed holes and record references, in order (see the module docstring)."""

    parts: list = field(default_factory=list)      # str | Field | Ref
    base_dir: Path | None = None                   # where relative schema / grammar paths live
    source: str = "<template>"

    # -- the text form --------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, *, base_dir: str | Path | None = None,
              source: str = "<template>") -> "Document":
        doc = cls(base_dir=Path(base_dir) if base_dir is not None else None, source=source)
        i, buf = 0, []
        while i < len(text):
            if text.startswith("\\{{", i):
                buf.append("{{")
                i += 3
                continue
            if not text.startswith("{{", i):
                j = text.find("{{", i)
                j = len(text) if j < 0 else j
                if j > i and text[j - 1] == "\\":
                    j -= 1
                buf.append(text[i:j])
                i = j
                continue
            line, col = _line_col(text, i)
            end = _closing(text, i + 2)
            if end < 0:
                raise TemplateError("'{{' is never closed by '}}'", line=line, column=col,
                                    source=source, hint="write \\{{ for a literal {{")
            if buf:
                doc.parts.append("".join(buf))
                buf = []
            doc.parts.append(_parse_tag(text[i + 2:end], line, col, source))
            i = end + 2
        if buf:
            doc.parts.append("".join(buf))
        doc._check_names()
        return doc

    @classmethod
    def load(cls, path: str | Path) -> "Document":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise TemplateError(f"cannot read the template: {e.strerror}", source=str(p)) \
                from None
        except UnicodeDecodeError as e:
            raise TemplateError(not_utf8(None, e), source=str(p)) from None
        return cls.parse(text, base_dir=p.parent, source=str(p))

    # -- the builder ----------------------------------------------------------------------------

    def text(self, s: str) -> "Document":
        self.parts.append(s)
        return self

    def ref(self, path: str) -> "Document":
        self.parts.append(Ref(path))
        return self

    def hole(self, name: str, kind: str, *, max_tokens: int | None = None, **args) -> "Document":
        f = _make_field(name, kind, args, max_tokens, None, None, self.source)
        self.parts.append(f)
        self._check_names()
        return self

    def text_hole(self, name, **kw):
        return self.hole(name, "text", **kw)

    def string(self, name, **kw):
        return self.hole(name, "string", **kw)

    def int(self, name, **kw):
        return self.hole(name, "int", **kw)

    def number(self, name, **kw):
        return self.hole(name, "number", **kw)

    def bool(self, name, **kw):
        return self.hole(name, "bool", **kw)

    def choice(self, name, options, **kw):
        return self.hole(name, "choice", options=list(options), **kw)

    def regex(self, name, pattern, **kw):
        return self.hole(name, "regex", pattern=pattern, **kw)

    def json(self, name, schema, **kw):
        if isinstance(schema, type):                     # a pydantic model class
            schema = pydantic_to_schema(schema)
        return self.hole(name, "json", schema=schema, **kw)

    def grammar(self, name, grammar, **kw):
        return self.hole(name, "grammar", grammar=grammar, **kw)

    # -- queries --------------------------------------------------------------------------------

    @property
    def fields(self) -> list[Field]:
        return [p for p in self.parts if isinstance(p, Field)]

    @property
    def refs(self) -> list[Ref]:
        return [p for p in self.parts if isinstance(p, Ref)]

    def literal_parts(self, record: Any = None) -> list:
        """Parts with references replaced by the record's values (str | Field)."""
        out: list = []
        for p in self.parts:
            if isinstance(p, Ref):
                if record is None:
                    raise TemplateError(f"the template refers to {p.path!r} but no record was "
                                        "given", line=p.line, column=p.column, source=self.source)
                p = p.lookup(record, self.source)
            if isinstance(p, str) and out and isinstance(out[-1], str):
                out[-1] += p
            else:
                out.append(p)
        return out

    def _check_names(self) -> None:
        seen: set = set()
        for f in self.fields:
            if f.name in seen:
                raise f.error("two holes have this name", self.source)
            seen.add(f.name)


def render_refs(text: str, record: Any, *, source: str = "<prompt>") -> str:
    """A text with ``{{@field}}`` references (and no holes) filled from ``record``."""
    doc = Document.parse(text, source=source)
    if doc.fields:
        f = doc.fields[0]
        raise TemplateError("holes are not allowed here, only {{@field}} references",
                            line=f.line, column=f.column, hole=f.name, source=source)
    return "".join(doc.literal_parts(record))


# -- parsing a tag ----------------------------------------------------------------------------

def _line_col(text: str, i: int) -> tuple[int, int]:
    line = text.count("\n", 0, i) + 1
    return line, i - (text.rfind("\n", 0, i) + 1) + 1


def _closing(text: str, i: int) -> int:
    """Index of the ``}}`` closing a tag opened before ``i`` (skipping JSON strings / objects)."""
    depth, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0 and text.startswith("}}", i):
                return i
            depth = max(0, depth - 1)
        elif c == "\n" and depth == 0:
            return -1
        i += 1
    return -1


def _parse_tag(body: str, line: int, col: int, source: str):
    s = body.strip()
    if s.startswith("@"):
        path = s[1:].strip()
        if not path or not all(part and re.fullmatch(r"[\w\-]+", part) for part in path.split(".")):
            raise TemplateError(f"bad record reference {s!r}: write {{{{@field}}}} or "
                                "{{@field.sub.0}}", line=line, column=col, source=source)
        return Ref(path, line, col)
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([A-Za-z_]+)", body)
    if not m:
        raise TemplateError(f"expected {{{{ name: kind ... }}}} or {{{{@field}}}}, got "
                            f"{{{{{body.strip()[:40]}}}}}", line=line, column=col, source=source)
    name, kind = m.group(1), m.group(2)
    rest = body[m.end():]
    positional, args = _parse_args(rest, line, col + 2 + m.end(), source, name)
    max_tokens = args.pop("max_tokens", None)
    if positional is not None:
        key = _POSITIONAL.get(kind)
        if key is None:
            raise TemplateError(f"{kind} takes no positional value ({json.dumps(positional)})",
                                line=line, column=col, hole=name, source=source)
        args[key] = positional
    return _make_field(name, kind, args, max_tokens, line, col, source)


_BARE = re.compile(r"[A-Za-z_][\w.\-/]*")


def _parse_args(rest: str, line: int, col: int, source: str, name: str):
    """``[value] key=value ...`` with JSON values or bare words; nothing is evaluated."""
    dec = json.JSONDecoder()
    i, n = 0, len(rest)
    positional, args = None, {}

    def value_at(j):
        m = _BARE.match(rest, j)
        if m and m.group(0) not in ("true", "false", "null"):
            return m.group(0), m.end()
        try:
            return dec.raw_decode(rest, j)
        except json.JSONDecodeError as e:
            raise TemplateError(f"bad value: {e.msg}", line=line, column=col + j, hole=name,
                                source=source) from None
    while True:
        while i < n and rest[i].isspace():
            i += 1
        if i >= n:
            break
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*", rest[i:])
        if m:
            key = m.group(1)
            if key in args:
                raise TemplateError(f"argument {key!r} given twice", line=line, column=col + i,
                                    hole=name, source=source)
            v, i = value_at(i + m.end())
            args[key] = v
        elif positional is None and not args:
            positional, i = value_at(i)
        else:
            raise TemplateError(f"expected key=value at {rest[i:i + 20]!r}", line=line,
                                column=col + i, hole=name, source=source)
    return positional, args


def _make_field(name, kind, args, max_tokens, line, col, source) -> Field:
    def err(msg, hint=None):
        return TemplateError(msg, line=line, column=col, hole=name, source=source, hint=hint)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise err("a hole name is a Python-style identifier")
    if kind not in KINDS:
        raise err(f"unknown hole kind {kind!r}", hint=f"kinds are {', '.join(KINDS)}")
    unknown = set(args) - _ARGS[kind]
    if unknown:
        raise err(f"{kind} holes take no argument {sorted(unknown)[0]!r}",
                  hint=f"{kind} takes {', '.join(sorted(_ARGS[kind] | {'max_tokens'}))}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise err(f"max_tokens must be a positive integer, not {max_tokens!r}")
    if kind == "grammar" and max_tokens is None:
        max_tokens = 64
    return Field(name=name, kind=kind, args=tuple(sorted(args.items())), max_tokens=max_tokens,
                 line=line, column=col)
