"""Spec stage, document templates: a hole of a document (:class:`Field`: its kind, arguments,
pieces and check), a reference to the record (:class:`Ref`) and the error that names where.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..automata.byte_dfa import check_regex_syntax
from ..errors import SpecError, ValidationFailure, not_utf8
from . import linear_match
from .grammar import grammar_validator, load_grammar
from .json_check import json_validator
from .json_schema import schema_to_pieces
from .pieces import Piece, HoleSpec, Text, regex_escape

KINDS = ("text", "string", "int", "number", "bool", "choice", "regex", "json", "grammar")
KIND_ARGS = {
    "text": {"multiline"}, "string": {"min_length", "max_length"}, "int": {"min", "max"},
    "number": {"min", "max"}, "bool": set(), "choice": {"options"}, "regex": {"pattern"},
    "json": {"schema"}, "grammar": {"grammar", "start", "max_depth"},
}
POSITIONAL_ARG = {"choice": "options", "regex": "pattern", "grammar": "grammar", "json": "schema"}
HOLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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
        """Text and hole specs for this hole (grammar holes are compiled apart: see ``grammar``)."""
        a, k = self.arg, self.kind
        hole_kind, regex = "regex", None
        if k == "text":
            regex, hole_kind = ("(?s:.*)" if a.get("multiline", True) else "[^\\n]*"), "any"
        elif k == "string":
            lo, hi = a.get("min_length", 0), a.get("max_length")
            if not isinstance(lo, int) or lo < 0 or (hi is not None and
                                                       (not isinstance(hi, int) or hi < lo)):
                raise self.error("min_length / max_length must be integers with 0 <= min <= max",
                                 source)
            regex, hole_kind = f"[^\\n]{{{lo},{'' if hi is None else hi}}}", "string"
        elif k in ("int", "number", "bool", "json"):
            schema = self._schema(base_dir, source)
            try:
                pieces = schema_to_pieces(schema)
            except SpecError as e:
                raise self.error(str(e), source) from None
            return [p if isinstance(p, Text) else HoleSpec(
                regex=p.regex, kind=p.kind, pointer=p.pointer, length=p.length,
                name=f"{self.name}{p.pointer}" if p.pointer else self.name,
                max_tokens=self.max_tokens if len(pieces) == 1 else p.max_tokens)
                for p in pieces]
        elif k == "choice":
            opts = a.get("options")
            if not (isinstance(opts, list) and opts and all(isinstance(o, str) and o for o in opts)):
                raise self.error("choice needs a non-empty list of non-empty strings, e.g. "
                                 'choice ["yes", "no"]', source)
            regex, hole_kind = "(" + "|".join(regex_escape(o) for o in opts) + ")", "enum"
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
        return [HoleSpec(regex=regex, kind=hole_kind, max_tokens=self.max_tokens, name=self.name)]

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
            return json_validator(self._schema(base_dir, source))(text)
        if k == "grammar":
            return grammar_validator(self.grammar(base_dir, source))(text)
        raise bad(f"unknown kind {k}")                         # pragma: no cover
