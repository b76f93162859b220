"""Spec stage, Python holes inside one string literal or one comment.

Editors often put the cursor inside a string or a comment. When the hole starts and ends inside
the same literal (a ``'...'`` / ``\"\"\"...\"\"\"`` string with any ``r`` / ``b`` / ``u`` prefix,
or a comment), the middle is text of the literal's *body*: the quotient of the body's regular
language by the body text before and after the cursor. Every such middle leaves the file's
tokens as they were (the literal still closes where it closed, no escape is left invalid), so
the file compiles exactly when it compiles with an empty middle, which is probed once. Cheap
(a few states) and exact; f-strings and the first two lines' comments (an encoding declaration)
are left to the other contexts.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from typing import Callable

from ..automata.byte_dfa import ByteDFA, regex_to_byte_dfa
from ..automata.dfa_ops import quotient
from .python_context import compiles

__all__ = ["LiteralContext", "literal_context", "literal_dfa", "literal_key", "body_regex"]

_PREFIX = re.compile(r"[rRbBuUfF]{0,2}")


@dataclass(frozen=True)
class LiteralContext:
    """A hole inside one literal: ``body`` is the regex of the literal's whole body, ``before`` /
    ``after`` the body text on either side of the cursor."""

    literal: str                    # "string" or "comment"
    body: str
    before: str
    after: str
    witness: str = ""
    kind: str = "literal"
    excluded_names: frozenset = frozenset()


def body_regex(prefix: str, quote: str) -> str:
    """The bodies Python accepts between ``quote``s after string prefix ``prefix``: no closing
    quote inside, escapes that are complete (``\\x`` two hex digits, ``\\u`` four, ``\\U``
    eight; ``\\N{...}`` is left out: its names are not regular), no NUL or carriage return, ASCII
    only in bytes literals; a triple-quoted body never ends with its quote character."""
    raw, data = "r" in prefix.lower(), "b" in prefix.lower()
    q = re.escape(quote[0])
    triple = len(quote) == 3
    nl = "" if triple else r"\n"
    if data:
        plain = rf"[^{q}\\\x00\r{nl}\x80-\U0010ffff]"
        esc = r"\\[^\x00\r\x80-\U0010ffff]" if raw else \
            r"\\([^x\x00\r\x80-\U0010ffff]|x[0-9a-fA-F]{2})"
    else:
        plain = rf"[^{q}\\\x00\r{nl}]"
        esc = r"\\[^\x00\r]" if raw else \
            r"\\([^xuUN\x00\r]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
    unit = f"({plain}|{esc})"
    if triple:
        return f"({q}{{0,2}}{unit})*"
    return f"{unit}*"


COMMENT_BODY = r"[^\n\r\x00]*"
"""A comment's text after ``#``: anything up to the end of its line."""


def _offsets(source: str) -> list[int]:
    """Offsets of the line starts, lines cut as the tokenizer cuts them (at ``\\n`` only, not
    at the form feeds and line separators ``str.splitlines`` also cuts at)."""
    starts = [0]
    for line in io.StringIO(source):
        starts.append(starts[-1] + len(line))
    return starts


def literal_context(prefix: str, suffix: str, *,
                    document: Callable[[str], str] | None = None) -> LiteralContext | None:
    """The hole as text of the literal around the cursor, or None when the cursor is not inside
    the body of one string (not an f-string) or comment whose rest the suffix holds, or when
    the file does not compile with an empty middle."""
    source = prefix + suffix
    cut = len(prefix)
    starts = _offsets(source)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    for tok in tokens:
        a = starts[tok.start[0] - 1] + tok.start[1]
        b = starts[tok.end[0] - 1] + tok.end[1]
        if b < cut:
            continue
        if a >= cut:
            return None
        text = tok.string
        if tok.type == tokenize.COMMENT:
            if tok.start[0] <= 2 and "coding" in text:
                return None
            ctx = LiteralContext("comment", COMMENT_BODY, source[a + 1:cut], source[cut:b])
        elif tok.type == tokenize.STRING:
            pre = _PREFIX.match(text).group(0)
            if "f" in pre.lower():
                return None
            rest = text[len(pre):]
            quote = rest[:3] if rest[:3] in ('"""', "'''") else rest[0]
            lo, hi = a + len(pre) + len(quote), b - len(quote)
            if not lo <= cut <= hi:
                return None
            ctx = LiteralContext("string", body_regex(pre, quote), source[lo:cut],
                                 source[cut:hi])
        else:
            return None
        doc = document or (lambda m: prefix + m + suffix)
        if literal_dfa(ctx) is None or not compiles(doc("")):
            return None
        return ctx
    return None


def literal_key(ctx: LiteralContext) -> str:
    """The name of the hole's language (the automata caches key on it)."""
    return "\\p{cdlm-python}literal " + repr((ctx.body, ctx.before, ctx.after))


def literal_dfa(ctx: LiteralContext, *, timeout_s: float = 10.0,
                max_states: int = 200_000) -> ByteDFA | None:
    """The byte DFA of the middles (None: no middle fits, e.g. the text around the cursor uses
    an escape the body language leaves out)."""
    body = regex_to_byte_dfa(ctx.body, timeout_s=timeout_s, max_states=max_states)
    return quotient(body, ctx.before.encode(), ctx.after.encode())
