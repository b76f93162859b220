"""The intermediate form every spec compiles to: literal text and typed hole specs, in order.

A spec front end (JSON Schema, regex, template...) knows nothing about tokens. It emits a flat
sequence of :class:`Text` (scaffold the model never changes) and :class:`HoleSpec` (a span the model
fills, constrained by a regex). The compile stage turns this into token templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from ..automata.automaton import CharLength  # noqa: F401 - part of the piece vocabulary

HoleKind = Literal["string", "integer", "number", "boolean", "null", "enum", "array", "object",
                   "any", "regex"]


@dataclass(frozen=True)
class Text:
    """Scaffold text, written into the canvas as fixed tokens."""

    text: str


@dataclass(frozen=True)
class HoleSpec:
    """A span the model fills. Its whole text must fullmatch ``regex`` (Python ``re`` syntax that
    Rust's ``regex`` crate reads the same way: no lookaround, no backreferences)."""

    regex: str
    kind: HoleKind = "regex"
    pointer: str = ""                    # JSON pointer of the schema node, for errors
    max_tokens: int | None = None        # explicit budget (x-max-tokens / per-field override)
    length: CharLength | None = None     # character-length bounds enforced by a counter
    name: str = ""                       # a human label (property name, template hole name)
    optional: bool = False               # an optional property: key + value, or nothing
    size: int | None = None              # tokens the value needs at most, when the schema says
    hint: str = ""                       # text a model trained for it is shown at the hole's
                                         # first masked positions: an optional property's key


Piece = Union[Text, HoleSpec]


@dataclass
class SpecReport:
    """What a front end had to drop in lenient mode, so nothing is ignored silently."""

    dropped: list[tuple[str, str]] = field(default_factory=list)  # (keyword, JSON pointer)


# JSON string building blocks, shared by every front end.
JSON_CHAR = r'([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u([0-9a-cA-CefEF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))'
"""One character of a JSON string body: a plain code point or an escape. ``\\u`` escapes of
surrogates are excluded so that one escape is always one decoded character."""
SAFE_CHAR = r'[^"\\\x00-\x1f]'
"""A JSON string character that needs no escape; bodies built from it decode to themselves."""


def string_hole_regex(lead: str = " ") -> str:
    """A string value hole_spec: it owns ``lead`` (the space after a colon, or nothing at the root) and
    both quotes, so the model may use its natural tokens at the edges."""
    return regex_escape(lead) + '"' + JSON_CHAR + '*"'


_META = set(".^$*+?()[]{}|\\-#&~")


def regex_escape(text: str) -> str:
    """Escape ``text`` for a regex read the same by Python ``re`` and Rust ``regex``.

    ``re.escape`` escapes spaces and other characters Rust rejects as escapes; we escape only
    metacharacters, and control characters as ``\\xHH``.
    """
    out = []
    for ch in text:
        if ch in _META:
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)
