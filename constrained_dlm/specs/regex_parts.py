"""Reusable regex builders for the spec front ends.

Every regex here means the same in Python ``re`` and in Rust's ``regex`` crate (which outlines-core
uses): no lookaround, no backreferences, no ``\\d``/``\\w``/``\\s``, no lazy quantifiers, no anchors.

Contents:

- :func:`integer_range_regex` - exact regexes for canonical integers in ``[lo, hi]``;
- :func:`number_range_regex` - exact regexes for JSON numbers (no exponent) in a decimal interval;
- :data:`FORMAT_BODIES` - string bodies (inside the quotes) for common JSON Schema formats;
- :func:`translate_pattern` - an ECMA-262 ``pattern`` (search semantics) to an escape-free string
  body in our dialect.
"""

from __future__ import annotations

from decimal import Decimal
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

INTEGER = r"-?(0|[1-9][0-9]*)"
NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
BOOLEAN = r"(true|false)"
NULL = r"null"
ASCII_SAFE_CHAR = r'[ !#-\[\]-~]'
"""A printable ASCII character that needs no escape in a JSON string (one byte: cheap to repeat)."""


class PatternUnsupported(ValueError):
    """A ``pattern`` uses syntax we cannot translate exactly (lookaround, backreference...)."""


# ---------------------------------------------------------------------------------------------
# Integers


def _alt(parts: list[str]) -> str:
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ValueError("empty alternation")
    if len(parts) == 1:
        return parts[0]
    return "(" + "|".join(parts) + ")"


def _digit_class(lo: int, hi: int) -> str:
    if lo == hi:
        return str(lo)
    if lo == 0 and hi == 9:
        return "[0-9]"
    return f"[{lo}-{hi}]"


def _fixed_range(lo: str, hi: str) -> str:
    """Digit strings of length ``len(lo) == len(hi)`` (leading zeros allowed) in ``[lo, hi]``."""
    n = len(lo)
    if n == 0:
        return ""
    if lo == "0" * n and hi == "9" * n:
        return "[0-9]" if n == 1 else f"[0-9]{{{n}}}"
    if n == 1:
        return _digit_class(int(lo), int(hi))
    if lo[0] == hi[0]:
        return lo[0] + _fixed_range(lo[1:], hi[1:])
    a, b = int(lo[0]), int(hi[0])
    parts = [lo[0] + _fixed_range(lo[1:], "9" * (n - 1))]
    if b - a >= 2:
        parts.append(_digit_class(a + 1, b - 1) + _fixed_range("0" * (n - 1), "9" * (n - 1)))
    parts.append(hi[0] + _fixed_range("0" * (n - 1), hi[1:]))
    return _alt(parts)


def _nonneg_range(lo: int, hi: Optional[int]) -> Optional[str]:
    """Canonical non-negative integers (no leading zeros) in ``[lo, hi]``; None when empty."""
    lo = max(lo, 0)
    if hi is not None and hi < lo:
        return None
    parts = []
    top = len(str(hi)) if hi is not None else len(str(lo))
    for length in range(len(str(lo)), top + 1):
        first = 0 if length == 1 else 10 ** (length - 1)
        last = 10 ** length - 1
        a = max(lo, first)
        b = last if hi is None else min(hi, last)
        if a > b:
            continue
        parts.append(_fixed_range(str(a), str(b)))
    if hi is None:
        n = len(str(lo))
        parts.append(f"[1-9][0-9]{{{n}}}[0-9]*" if n > 0 else "[1-9][0-9]*")
    return _alt(parts) if parts else None


def integer_range_regex(lo: Optional[int], hi: Optional[int]) -> Optional[str]:
    """Exact regex for canonical JSON integers ``n`` with ``lo <= n <= hi`` (None: unbounded).

    ``-0`` is never produced. Returns None when the range is empty."""
    if lo is None and hi is None:
        return INTEGER
    if lo is not None and hi is not None and lo > hi:
        return None
    parts = []
    if hi is None or hi >= 0:
        p = _nonneg_range(0 if lo is None else max(lo, 0), hi)
        if p is not None:
            parts.append(p)
    if lo is None or lo < 0:
        # negative values v = -m, m in [max(1, -hi), -lo]
        m_lo = 1 if hi is None or hi >= 0 else -hi
        m_hi = None if lo is None else -lo
        m_lo = max(m_lo, 1)
        p = _nonneg_range(m_lo, m_hi)
        if p is not None:
            parts.append("-" + p)
    return _alt(parts) if parts else None


# ---------------------------------------------------------------------------------------------
# Numbers (decimal, no exponent) in an interval


def _frac_digits(d: Decimal) -> tuple[int, str]:
    """Split a non-negative decimal into integer part and fraction digits (no trailing zeros)."""
    i = int(d)  # truncates toward zero; d >= 0
    rest = d - i
    if rest == 0:
        return i, ""
    s = format(rest, "f")  # "0.xxx"
    frac = s.split(".", 1)[1].rstrip("0")
    return i, frac


def _frac_regex(lo: Optional[tuple[str, bool]], hi: Optional[tuple[str, bool]]):
    """Digit strings s (possibly empty) with ``0.s`` in the interval given by fraction-digit
    bounds ``(digits, inclusive)`` (None: unbounded). Returns ``(nonempty_regex | None, empty_ok)``."""
    if lo is not None and lo[0] == "" and lo[1]:
        lo = None
    if lo is None and hi is None:
        return "[0-9]+", True
    if hi is not None and hi[0] == "" and not hi[1]:
        return None, False  # must be < 0
    if lo is None and hi is not None and hi[0] == "":
        return "0+", True  # must be == 0
    if lo is not None and lo[0] == "" and hi is None:
        return "0*[1-9][0-9]*", False  # must be > 0
    if lo is not None and lo[0] == "" and hi is not None and hi[0] == "":
        return None, False
    # empty string has value 0
    empty_ok = (lo is None) and (hi is None or hi[0] != "" or hi[1])
    groups: dict[tuple, list[int]] = {}
    for d in range(10):
        nlo = lo
        if lo is not None:
            l0 = int(lo[0][0]) if lo[0] else 0
            if d < l0:
                continue
            nlo = None if d > l0 else (lo[0][1:], lo[1])
        nhi = hi
        if hi is not None:
            h0 = int(hi[0][0]) if hi[0] else 0
            if d > h0:
                continue
            nhi = None if d < h0 else (hi[0][1:], hi[1])
        groups.setdefault((nlo, nhi), []).append(d)
    alts = []
    for (nlo, nhi), digits in groups.items():
        ne, eok = _frac_regex(nlo, nhi)
        if ne is None and not eok:
            continue
        cls = _digit_class(digits[0], digits[-1]) if digits == list(range(digits[0], digits[-1] + 1)) \
            else "[" + "".join(map(str, digits)) + "]"
        if ne is None:
            alts.append(cls)
        elif eok:
            alts.append(cls + "(" + ne + ")?")
        else:
            alts.append(cls + ne)
    if not alts:
        return None, empty_ok
    return _alt(alts), empty_ok


def _magnitude_regex(lo: Decimal, lo_incl: bool, hi: Optional[Decimal], hi_incl: bool) -> Optional[str]:
    """Non-negative decimal texts ``I(.F)?`` (canonical integer part) with value in the interval."""
    if hi is not None and (hi < lo or (hi == lo and not (lo_incl and hi_incl))):
        return None
    li, lf = _frac_digits(lo)
    parts = []

    def with_frac(int_rx: Optional[str], flo, fhi):
        if int_rx is None:
            return
        ne, eok = _frac_regex(flo, fhi)
        if ne is None and not eok:
            return
        if ne is None:
            parts.append(int_rx)
        elif eok:
            parts.append(int_rx + r"(\." + ne + ")?")
        else:
            parts.append(int_rx + r"\." + ne)

    if hi is None:
        with_frac(str(li), (lf, lo_incl), None)
        with_frac(_nonneg_range(li + 1, None), None, None)
    else:
        hi_i, hf = _frac_digits(hi)
        if li == hi_i:
            with_frac(str(li), (lf, lo_incl), (hf, hi_incl))
        else:
            with_frac(str(li), (lf, lo_incl), None)
            with_frac(_nonneg_range(li + 1, hi_i - 1), None, None)
            with_frac(str(hi_i), None, (hf, hi_incl))
    return _alt(parts) if parts else None


def number_range_regex(lo: Optional[Decimal], lo_incl: bool, hi: Optional[Decimal],
                       hi_incl: bool) -> Optional[str]:
    """Exact regex for JSON numbers written without exponent whose decimal value lies in the
    interval (None bound: unbounded). Returns None when the interval is empty."""
    if lo is None and hi is None:
        return NUMBER
    parts = []
    zero = Decimal(0)
    # non-negative values
    if hi is None or hi > 0 or (hi == 0 and hi_incl):
        if lo is None or lo < 0:
            p = _magnitude_regex(zero, True, hi, hi_incl)
        else:
            p = _magnitude_regex(lo, lo_incl, hi, hi_incl)
        if p is not None:
            parts.append(p)
    # negative values v = -m, m > 0
    if lo is None or lo < 0:
        if hi is None or hi >= 0:
            m_lo, m_lo_incl = zero, False
        else:
            m_lo, m_lo_incl = -hi, hi_incl
        m_hi, m_hi_incl = (None, True) if lo is None else (-lo, lo_incl)
        p = _magnitude_regex(m_lo, m_lo_incl, m_hi, m_hi_incl)
        if p is not None:
            parts.append("-" + p)
    return _alt(parts) if parts else None


# ---------------------------------------------------------------------------------------------
# Formats: bodies of a JSON string (between the quotes), escape-free.

_YEAR = r"([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_MONTH_DAY = (r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
              r"|02-(0[1-9]|1[0-9]|2[0-8]))")
_DATE = _YEAR + "-" + _MONTH_DAY
_TIME = (r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
         r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
_H16 = "[0-9a-fA-F]{1,4}"
_IPV6 = "(" + "|".join([
    f"({_H16}:){{7}}{_H16}",
    f"({_H16}:){{1,7}}:",
    f"({_H16}:){{1,6}}:{_H16}",
    f"({_H16}:){{1,5}}(:{_H16}){{1,2}}",
    f"({_H16}:){{1,4}}(:{_H16}){{1,3}}",
    f"({_H16}:){{1,3}}(:{_H16}){{1,4}}",
    f"({_H16}:){{1,2}}(:{_H16}){{1,5}}",
    f"{_H16}:(:{_H16}){{1,6}}",
    f":((:{_H16}){{1,7}}|:)",
]) + ")"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_URI_CHAR = r"[A-Za-z0-9._~!$&'()*+,;=:@-]"
_URI = (r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~-]+(:[0-9]{1,5})?"
        rf"(/{_URI_CHAR}*)*(\?({_URI_CHAR}|/|\?)*)?(#({_URI_CHAR}|/|\?)*)?")

FORMAT_BODIES: dict[str, str] = {
    "date": _DATE,
    "time": _TIME,
    "date-time": _DATE + "T" + _TIME,
    # domain labels neither start nor end with a hyphen
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9]+(-+[A-Za-z0-9]+)*(\.[A-Za-z0-9]+(-+[A-Za-z0-9]+)*)*"
             r"\.[A-Za-z]{2,}",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "ipv4": _OCTET + r"(\." + _OCTET + "){3}",
    "ipv6": _IPV6,
    # at most 3 labels of at most 63 characters: total length stays under 253
    "hostname": _LABEL + r"(\." + _LABEL + "){0,2}",
    "uri": _URI,
}
"""Bodies strict enough that ``jsonschema``'s format checker accepts everything they match
(no leap seconds, no Feb 29, no IPv4-in-IPv6, no percent-escapes in URIs)."""


# ---------------------------------------------------------------------------------------------
# Character classes

_MAXCP = 0x10FFFF
_EXCLUDED = [(0x00, 0x1F), (ord('"'), ord('"')), (ord("\\"), ord("\\")), (0xD800, 0xDFFF)]
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x20, 0x20)]


def _normalize(ranges):
    out = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


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
