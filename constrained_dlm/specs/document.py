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
from pathlib import Path
from typing import Any

from ..errors import not_utf8
from .document_fields import HOLE_NAME, KIND_ARGS, KINDS, POSITIONAL_ARG, Field, Ref, TemplateError
from .pydantic_model import pydantic_to_schema

__all__ = ["Document", "Field", "Ref", "TemplateError", "KINDS", "render_refs"]


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
        key = POSITIONAL_ARG.get(kind)
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
    if not isinstance(name, str) or not HOLE_NAME.fullmatch(name):
        raise err("a hole name is a Python-style identifier")
    if kind not in KINDS:
        raise err(f"unknown hole kind {kind!r}", hint=f"kinds are {', '.join(KINDS)}")
    unknown = set(args) - KIND_ARGS[kind]
    if unknown:
        raise err(f"{kind} holes take no argument {sorted(unknown)[0]!r}",
                  hint=f"{kind} takes {', '.join(sorted(KIND_ARGS[kind] | {'max_tokens'}))}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise err(f"max_tokens must be a positive integer, not {max_tokens!r}")
    if kind == "grammar" and max_tokens is None:
        max_tokens = 64
    return Field(name=name, kind=kind, args=tuple(sorted(args.items())), max_tokens=max_tokens,
                 line=line, column=col)
