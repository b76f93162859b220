"""Spec stage: regex matching for the independent re-check of outputs, in linear time.

Python's ``re`` backtracks: ``^(?:(a|aa)*[^\\s\\S]|(a|aa)*b)$`` on 60 ``a``s runs for hours
while holding the GIL, and the final validation of a value (a JSON Schema ``pattern``, a regex
hole) is exactly such a call. RE2 (``google-re2``) answers it in microseconds, whatever the
pattern. RE2 reads ``\\d \\w \\s`` as ASCII classes and ``$`` as the end of the text, which is
what JSON Schema's ECMA-262 patterns and our automata mean too. A pattern RE2 cannot parse
falls back to Python's ``re`` (the automaton that produced the value stays linear either way).
Measured: 0.1 ms for the pattern above (Python ``re``: did not finish in 10 minutes).
"""

from __future__ import annotations

import functools
import re

import re2


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str):
    try:
        return re2.compile(pattern)
    except re2.error:
        return re.compile(pattern)


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (JSON Schema's ``pattern``)."""
    return _compiled(pattern).search(text) is not None


def fullmatch(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches the whole of ``text`` (a regex hole's value)."""
    return _compiled(pattern).fullmatch(text) is not None


_INLINE = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))


def linear_terminals(parser) -> int:
    """Swap the terminal regexes a lark Earley parser (dynamic lexer) matches with for RE2 ones,
    so that checking a grammar hole's text cannot backtrack (a terminal ``/(a|aa)*b/`` hung the
    check for minutes: the dynamic lexer tries it at every position and length). Terminals RE2
    cannot parse keep Python's ``re``. Returns how many were swapped; 0 when the parser's layout
    is not the one known here (another lark version), which leaves it as it was."""
    matcher = getattr(getattr(getattr(getattr(parser, "parser", None), "parser", None),
                              "term_matcher", None), "__self__", None)
    regexps = getattr(matcher, "regexps", None)
    if not isinstance(regexps, dict):
        return 0
    swapped = 0
    for name, rx in list(regexps.items()):
        if not isinstance(rx, re.Pattern) or not isinstance(rx.pattern, str):
            continue
        flags = "".join(c for f, c in _INLINE if rx.flags & f)
        try:
            regexps[name] = re2.compile((f"(?{flags})" if flags else "") + rx.pattern)
            swapped += 1
        except re2.error:
            pass
    return swapped
