"""Spec stage: an ECMA-262 ``pattern`` (JSON Schema, search semantics) translated to an
escape-free JSON string body in our regex dialect (:func:`translate_pattern`), with the
code-point classes it needs; what cannot be translated raises :class:`PatternUnsupported`.
"""

from __future__ import annotations

from typing import Optional

from .pieces import SAFE_CHAR, regex_escape

try:  # Python >= 3.11
    from re import _constants as _sre_c  # type: ignore[attr-defined]
    from re import _parser as _sre_p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_p  # type: ignore[no-redef]

import re
import threading

from ..automata.nfa import _normalize
from .regex_parts import PatternUnsupported

# ---------------------------------------------------------------------------------------------
# Character classes

_MAXCP = 0x10FFFF
_EXCLUDED = [(0x00, 0x1F), (ord('"'), ord('"')), (ord("\\"), ord("\\")), (0xD800, 0xDFFF)]
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x20, 0x20)]


def _complement(ranges, lo=0, hi=_MAXCP):
    out = []
    cur = lo
    for a, b in _normalize(ranges):
        if b < lo or a > hi:
            continue
        if a > cur:
            out.append((cur, a - 1))
        cur = max(cur, b + 1)
    if cur <= hi:
        out.append((cur, hi))
    return out


def _subtract(ranges, minus):
    return _intersect(ranges, _complement(minus))


def _intersect(r1, r2):
    out = []
    r1, r2 = _normalize(r1), _normalize(r2)
    i = j = 0
    while i < len(r1) and j < len(r2):
        a = max(r1[i][0], r2[j][0])
        b = min(r1[i][1], r2[j][1])
        if a <= b:
            out.append((a, b))
        if r1[i][1] < r2[j][1]:
            i += 1
        else:
            j += 1
    return out


def _class_char(cp: int) -> str:
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02x}"
    ch = chr(cp)
    if ch in "\\]^-[&~|":
        return "\\" + ch
    if cp > 0x7F:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    return ch


def char_class(ranges) -> Optional[str]:
    """A regex class for code-point ranges; None if empty."""
    ranges = _normalize(ranges)
    if not ranges:
        return None
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        cp = ranges[0][0]
        if 0x20 <= cp < 0x7F:
            return regex_escape(chr(cp))
    items = []
    for a, b in ranges:
        if a == b:
            items.append(_class_char(a))
        elif b == a + 1:
            items.append(_class_char(a) + _class_char(b))
        else:
            items.append(_class_char(a) + "-" + _class_char(b))
    return "[" + "".join(items) + "]"


def safe_class(ranges) -> Optional[str]:
    """A class of the given code points that can appear unescaped in a JSON string."""
    return char_class(_subtract(ranges, _EXCLUDED))


# ---------------------------------------------------------------------------------------------
# ECMA pattern -> escape-free string body

_CATS = {
    "CATEGORY_DIGIT": (_DIGIT, False), "CATEGORY_NOT_DIGIT": (_DIGIT, True),
    "CATEGORY_WORD": (_WORD, False), "CATEGORY_NOT_WORD": (_WORD, True),
    "CATEGORY_SPACE": (_SPACE, False), "CATEGORY_NOT_SPACE": (_SPACE, True),
}
_ASCII = [(0x20, 0x7E)]


def _cat_ranges(cat) -> list:
    base, neg = _CATS[str(cat)]
    if neg:
        # Python's (Unicode) \D \W \S exclude non-ASCII digits/letters/spaces that ECMA includes;
        # stay inside printable ASCII so both engines agree.
        return _subtract(_ASCII, base)
    return list(base)


_STATE = threading.local()


def _literal(cp: int) -> str:
    """One literal code point of the decoded string, written as JSON text."""
    ch = chr(cp)
    if ch == '"' or ch == "\\" or cp < 0x20:
        _STATE.escapes = True
    if ch == '"':
        return r'\\"'
    if ch == "\\":
        return r"\\\\"
    if cp < 0x20:
        esc = {8: "b", 9: "t", 10: "n", 12: "f", 13: "r"}.get(cp)
        return (r"\\" + esc) if esc else (r"\\u00" + f"{cp:02x}")
    if 0xD800 <= cp <= 0xDFFF:
        raise PatternUnsupported("surrogate code point in pattern")
    return regex_escape(ch) if cp < 0x80 else ch


def _in_class(items) -> Optional[str]:
    negate = False
    ranges: list = []
    has_cat = False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            ranges.append((av, av))
        elif name == "RANGE":
            ranges.append((av[0], av[1]))
        elif name == "CATEGORY":
            has_cat = True
            if str(av) not in _CATS:
                raise PatternUnsupported(f"class category {av}")
            ranges.extend(_cat_ranges(av))
        else:
            raise PatternUnsupported(f"class item {name}")
    if negate:
        universe = _ASCII if has_cat else [(0, _MAXCP)]
        ranges = _complement(ranges, 0, _MAXCP)
        ranges = _intersect(ranges, universe)
    return safe_class(ranges)


_NEVER = "[^\\x00-\\U0010ffff]"  # (unused) placeholder for an impossible match


def _seq(items, top: bool = False) -> str:
    out = []
    for op, av in items:
        out.append(_item(op, av))
    return "".join(out)


def _quant(body: str, lo: int, hi) -> str:
    maxrep = _sre_c.MAXREPEAT
    if hi == maxrep:
        if lo == 0:
            return f"({body})*"
        if lo == 1:
            return f"({body})+"
        return f"({body}){{{lo},}}"
    if lo == 0 and hi == 1:
        return f"({body})?"
    if lo == hi:
        return f"({body}){{{lo}}}"
    return f"({body}){{{lo},{hi}}}"


class _Impossible(Exception):
    pass


def _item(op, av) -> str:
    name = str(op)
    if name == "LITERAL":
        return _literal(av)
    if name == "NOT_LITERAL":
        c = safe_class(_complement([(av, av)]))
        return c
    if name == "ANY":
        return SAFE_CHAR
    if name == "IN":
        c = _in_class(av)
        if c is None:
            raise _Impossible()
        return c
    if name == "CATEGORY":
        c = safe_class(_cat_ranges(av))
        return c
    if name == "SUBPATTERN":
        group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise PatternUnsupported("inline flags")
        return "(" + _sub(sub) + ")"
    if name == "BRANCH":
        _, branches = av
        alts = []
        for b in branches:
            try:
                alts.append(_seq(b))
            except _Impossible:
                continue
        if not alts:
            raise _Impossible()
        return "(" + "|".join(alts) + ")"
    if name in ("MAX_REPEAT", "MIN_REPEAT"):
        lo, hi, sub = av
        try:
            body = _sub(sub)
        except _Impossible:
            if lo == 0:
                return ""
            raise
        if body == "":
            return ""
        return _quant(body, lo, hi)
    if name == "AT":
        raise PatternUnsupported("anchor or word boundary inside the pattern")
    if name in ("ASSERT", "ASSERT_NOT"):
        raise PatternUnsupported("lookaround")
    if name in ("GROUPREF", "GROUPREF_EXISTS"):
        raise PatternUnsupported("backreference")
    raise PatternUnsupported(f"regex construct {name}")


def _sub(sub) -> str:
    items = list(sub)
    if len(items) == 1 and str(items[0][0]) == "BRANCH":
        return _item(*items[0])[1:-1]
    return _seq(items)


_BEGIN = {"AT_BEGINNING", "AT_BEGINNING_STRING"}
_END = {"AT_END", "AT_END_STRING"}


def _top_branch(items) -> Optional[str]:
    items = list(items)
    start = bool(items) and str(items[0][0]) == "AT" and str(items[0][1]) in _BEGIN
    if start:
        items = items[1:]
    end = bool(items) and str(items[-1][0]) == "AT" and str(items[-1][1]) in _END
    if end:
        items = items[:-1]
    try:
        body = _seq(items)
    except _Impossible:
        return None
    any_ = SAFE_CHAR + "*"
    return ("" if start else any_) + body + ("" if end else any_)


def translate_pattern(pattern: str) -> str:
    return translate_pattern_ex(pattern)[0]


def translate_pattern_ex(pattern: str) -> tuple[str, bool]:
    """Translate a JSON Schema ``pattern`` (ECMA-262, *search* semantics) into a regex for the
    body of a JSON string (between the quotes) in our dialect.

    - ``^``/``$`` at the edges of top-level branches anchor; unanchored sides get ``SAFE_CHAR*``;
    - ``.``, negated classes: also exclude ``"``, ``\\``, control characters (the body is
      escape-free); negated classes mixing ``\\d``/``\\w``/``\\s`` stay within printable ASCII;
    - ``\\d`` -> ``[0-9]``, ``\\w`` -> ``[A-Za-z0-9_]``, ``\\s`` -> ``[ ]`` (tab and newline would
      need escapes);
    - literal ``"``, ``\\`` and control characters are written as their JSON escapes;
    - lazy quantifiers become greedy (same language);
    - lookaround, backreferences, inline flags, ``\\b``, anchors elsewhere: :class:`PatternUnsupported`.

    Returns ``(body, has_escapes)``: whether the body can contain JSON escapes.
    """
    _STATE.escapes = False
    try:
        parsed = _sre_p.parse(pattern)
    except re.error as exc:
        raise PatternUnsupported(f"cannot parse pattern {pattern!r}: {exc}") from exc
    if parsed.state.flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE):
        raise PatternUnsupported("inline flags")
    items = list(parsed)
    if len(items) == 1 and str(items[0][0]) == "BRANCH":
        branches = items[0][1][1]
    else:
        branches = [items]
    alts = [b for b in (_top_branch(br) for br in branches) if b is not None]
    if not alts:
        raise PatternUnsupported(f"pattern {pattern!r} matches no escape-free string")
    body = alts[0] if len(alts) == 1 else "(" + "|".join(alts) + ")"
    return body, bool(getattr(_STATE, "escapes", False))
