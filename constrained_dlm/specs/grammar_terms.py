"""Spec stage, grammars: the pieces every part shares: constants, :class:`GrammarError`, the
bundled grammars' folder, the word flags of fragments, and lark terminals turned into regexes
(with the features we refuse named)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lark import Tree
from lark.grammar import Terminal
from lark.lexer import PatternStr

from ..automata.byte_dfa import DEAD, regex_to_byte_dfa
from ..automata.dfa_ops import WORD_BYTES
from ..errors import RegexError, SpecError
from .pieces import regex_escape

try:  # Python 3.11+
    from re import _constants as sre_c
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as sre_c
    import sre_parse


BUNDLED = ("json", "arithmetic", "sql", "csv", "python_expr")
"""Names of the grammars shipped in ``grammars/`` (and ``constrained_dlm/grammars/``)."""

DEPTH_CAP = 6
"""Default nesting bound never exceeds this (see :func:`default_depth`)."""

_W, _N = "W", "N"      # follow contexts (regex only): what comes next may start with a word
#                        character, or cannot


class GrammarError(SpecError):
    """The grammar is malformed or uses something we cannot compile.

    ``line`` and ``column`` (1-based) locate the problem in the grammar text when known.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 hint: str | None = None):
        self.line = line
        self.column = column
        self.raw_message = message
        where = f" (line {line}, column {column})" if line is not None else ""
        if line is not None and f"line {line}, column {column}" in message:
            where = ""
        super().__init__(message + where, hint=hint)


def grammars_dir() -> Path:
    """The folder of bundled grammars, shipped inside the package (the repository's top-level
    ``grammars/`` is a link to it: one copy)."""
    return Path(__file__).resolve().parents[1] / "grammars"


@dataclass(frozen=True)
class _Flags:
    nullable: bool     # the fragment can be empty
    sw: bool           # some text of it can start with a word character
    ew: bool           # some text of it can end with a word character


def _sym_name(sym) -> str:
    if isinstance(sym, Terminal):
        return sym.name
    return "literal " + " ".join(str(t) for t in sym.children)


def _seq_flags(fs: list[_Flags]) -> _Flags:
    nullable = all(f.nullable for f in fs)
    sw = ew = False
    for f in fs:
        sw = sw or f.sw
        if not f.nullable:
            break
    for f in reversed(fs):
        ew = ew or f.ew
        if not f.nullable:
            break
    return _Flags(nullable, sw, ew)


def _repeat_bounds(node: Tree) -> tuple[int, int | None]:
    ops = node.children[1:]
    op = str(ops[0])
    if op == "?":
        return 0, 1
    if op == "*":
        return 0, None
    if op == "+":
        return 1, None
    if op == "~":
        lo = int(ops[1])
        hi = int(ops[2]) if len(ops) > 2 else lo
        if hi < lo:
            raise GrammarError(f"bad repetition range ~{lo}..{hi}")
        return lo, hi
    raise GrammarError(f"unsupported repetition operator {op!r}")


def _group(rx: str) -> str:
    """``rx`` as one atom (for a quantifier or an alternation), without redundant parentheses."""
    return rx if _is_atom(rx) else "(?:" + rx + ")"


def _is_atom(rx: str) -> bool:
    if len(rx) == 1 and rx not in _REGEX_META or len(rx) == 2 and rx[0] == "\\":
        return True
    if not rx or rx[0] not in "([":
        return False
    depth, i, in_class, start_class = 0, 0, False, 0
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]" and i > start_class + 1 + (rx[start_class + 1] == "^"):
                in_class = False
                if depth == 0 and i < len(rx) - 1:
                    return False
        elif c == "[":
            in_class, start_class = True, i
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and i < len(rx) - 1:
                return False
        i += 1
    return True


_REGEX_META = set(".^$*+?()[]{}|\\")


# --- terminals: regex, checks, word flags ---------------------------------------------------------

_FEATURES = {
    "ASSERT": "a lookahead or lookbehind", "ASSERT_NOT": "a negative lookahead or lookbehind",
    "GROUPREF": "a backreference", "GROUPREF_EXISTS": "a conditional group",
    "GROUPREF_IGNORE": "a backreference", "GROUPREF_UNI_IGNORE": "a backreference",
    "GROUPREF_LOC_IGNORE": "a backreference", "ATOMIC_GROUP": "an atomic group",
}


def _unsupported(parsed) -> str | None:
    for op, av in parsed:
        name = str(op)
        if name in _FEATURES:
            return _FEATURES[name]
        if op is sre_c.AT:
            return "an anchor (^, $, \\b, \\A, \\Z)"
        subs = []
        if op is sre_c.SUBPATTERN:
            subs = [av[3]]
        elif op is sre_c.BRANCH:
            subs = list(av[1])
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) or name == "POSSESSIVE_REPEAT":
            subs = [av[2]]
        for s in subs:
            bad = _unsupported(s)
            if bad:
                return bad
    return None


def _strip_group_names(rx: str) -> str:
    """``(?P<name>...)`` -> ``(?:...)``: a terminal inlined twice would define a name twice."""
    out, i, in_class = [], 0, False
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            out.append(rx[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if rx[i + 1:i + 2] == "]" or rx[i + 1:i + 3] == "^]":
                j = i + (2 if rx[i + 1] == "]" else 3)
                out.append(rx[i:j])
                i = j
                continue
        elif rx.startswith("(?P<", i):
            j = rx.find(">", i)
            out.append("(?:")
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _single_char_loop(rx: str) -> str | None:
    """``C`` when ``rx`` is ``C+`` for a single character or class ``C`` (maybe in a group)."""
    while rx.startswith("(?:") and rx.endswith(")") and _is_atom(rx):
        rx = rx[3:-1]
    if not rx.endswith("+") or rx.endswith("\\+"):
        return None
    inner = rx[:-1]
    while inner.startswith("(?:") and inner.endswith(")") and _is_atom(inner):
        inner = inner[3:-1]
    try:
        parsed = list(sre_parse.parse(inner))
    except re.error:
        return None
    if len(parsed) == 1 and parsed[0][0] in (sre_c.LITERAL, sre_c.IN, sre_c.NOT_LITERAL,
                                             sre_c.ANY) and _is_atom(inner):
        return inner
    return None


def _escape_controls(rx: str) -> str:
    """Raw control characters (lark unescapes ``\\n``, ``\\x00``...) written back as ``\\xHH``."""
    out, i = [], 0
    while i < len(rx):
        c = rx[i]
        if c == "\\" and i + 1 < len(rx):
            nxt = rx[i + 1]
            out.append(f"\\x{ord(nxt):02x}" if ord(nxt) < 0x20 or ord(nxt) == 0x7F else c + nxt)
            i += 2
            continue
        out.append(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
        i += 1
    return "".join(out)


def _terminal_info(name: str, pattern) -> tuple[str, _Flags] | None:

    if isinstance(pattern, PatternStr):
        rx = regex_escape(pattern.value)
        for f in pattern.flags:
            rx = f"(?{f}:{rx})"
    else:
        rx = pattern.to_regexp()
    try:
        parsed = sre_parse.parse(rx)
    except re.error as e:
        raise GrammarError(f"terminal {name}: invalid regex {rx!r}: {e}") from None
    bad = _unsupported(parsed)
    if bad:
        raise GrammarError(f"terminal {name} uses {bad} ({rx!r}), which no finite automaton "
                           "can check", hint="rewrite it without lookaround, backreferences or "
                           "anchors (lark's common.ESCAPED_STRING uses a lookbehind: define "
                           "your own string terminal)")
    if parsed.state.groupdict:
        rx = _strip_group_names(rx)
    if not parsed.state.flags & re.VERBOSE and "x" not in getattr(pattern, "flags", ()):
        rx = _escape_controls(rx)
    try:
        re.compile("x" + _group(rx))
    except re.error as e:
        raise GrammarError(f"terminal {name}: its regex {rx!r} cannot be embedded in a larger "
                           f"one ({e})", hint="use lark's flags (/.../i) instead of inline "
                           "global flags") from None
    try:
        dfa = regex_to_byte_dfa(rx)
    except RegexError as e:
        raise GrammarError(f"terminal {name}: {e}") from None
    if dfa.accepting[dfa.initial]:
        raise GrammarError(f"terminal {name} matches the empty string")
    word = np.nonzero(WORD_BYTES)[0]
    t = dfa.table
    sw = bool((t[dfa.initial, word] != DEAD).any())
    into = t[:, word]
    ew = bool(dfa.accepting[into[into != DEAD]].any())
    if not dfa.accepting.any():
        return None
    return _group(rx), _Flags(False, sw, ew)


def _locate(text: str, name: str) -> dict:
    """Line and column of the first use of ``name`` that is not its definition."""
    pat = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    fallback = {}
    for i, line in enumerate(text.splitlines(), 1):
        body = line.split("//")[0]
        for m in pat.finditer(body):
            rest = body[m.end():].lstrip()
            if rest.startswith(":") or rest.startswith(".") and m.start() == 0:
                fallback = fallback or {"line": i, "column": m.start() + 1}
                continue
            return {"line": i, "column": m.start() + 1}
    return fallback
