"""Reusable regex builders for the spec front ends.

Every regex here means the same in Python ``re`` and in Rust's ``regex`` crate (which outlines-core
uses): no lookaround, no backreferences, no ``\\d``/``\\w``/``\\s``, no lazy quantifiers, no anchors.

Contents:

- :func:`integer_range_regex` - exact regexes for canonical integers in ``[lo, hi]``;
- :func:`number_range_regex` - exact regexes for JSON numbers (no exponent) in a decimal interval;
- :data:`FORMAT_BODIES` - string bodies (inside the quotes) for common JSON Schema formats;
- :class:`PatternUnsupported`; the ``pattern`` translation itself is in
  :mod:`.pattern_translate`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Optional


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
