"""Spec stage, Python holes: the knobs of the regular Python approximation (:class:`PythonSubset`),
the shapes a block hole may take (:class:`BlockShape`) and the lexical pieces every part shares.
The language itself: :mod:`.python_code`."""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from typing import Iterable



RESERVED_NAMES = frozenset(keyword.kwlist) | {"__debug__", "__peg_parser__"}
"""Never a name in the middle: keywords, and names Python refuses to bind."""

_ID_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
_ID_CONT = _ID_START + "0123456789"
_NUMBER = r"(0|[1-9][0-9]*)(\.[0-9]+)?"
_STR_BODY = r"([^{q}\\\x00-\x1f\x7f]|\\[\\'\"nrt0])*"
_STRING = '"' + _STR_BODY.format(q='"') + '"|\'' + _STR_BODY.format(q="'") + "'"
_COMMENT = r"[^\x00-\x08\x0a-\x1f\x7f]*"            # any text but control characters (tab ok)
_SYM_OPS = ("+", "-", "*", "/", "//", "%", "**", "@", "<<", ">>", "&", "|", "^",
            "==", "!=", "<", ">", "<=", ">=")
_AUG_OPS = ("+=", "-=", "*=", "/=", "//=", "%=", "**=", "<<=", ">>=", "&=", "|=", "^=", "@=")


@dataclass(frozen=True)
class PythonSubset:
    """The knobs of the regular Python approximation. Each feature costs automaton states."""

    max_block_depth: int = 0        # compound statements nested inside the middle (0: none)
    max_expr_depth: int = 2         # calls / parentheses / lists nested inside an expression
    subscript_depth: int = 0        # bracket depth inside x[...] (0: x[i + 1], x[a:b], x[::-1])
    list_depth: int = 0             # bracket depth inside list displays [...]
    cond_depth: int | None = None   # bracket depth in if / while / for headers (None: max_expr_depth)
    body_expr_depth: int | None = None  # bracket depth in nested bodies (None: max_expr_depth)
    elif_: bool = True              # `elif` (else if-bodies and loop bodies share states)
    else_: bool = True              # `else:` after if (and after loops when elif_ is off)
    loops: bool = True              # `for` and `while`
    loop_break: bool = True         # break / continue inside the middle's own loops
    keyword_args: bool = False      # one trailing `name=value` argument in calls
    dicts: bool = False             # {k: v, ...} displays ({} is always there)
    conditional: bool = False       # `a if c else b`
    comprehensions: bool = False    # [e for x in it if c] (list displays only)
    raise_: bool = False            # `raise` and `raise EXPR`
    assert_: bool = False           # `assert EXPR` and `assert EXPR, EXPR`
    del_: bool = False              # `del targets`
    import_: bool = False           # `import a.b as c`, `from a import b as c`
    with_: bool = False             # `with EXPR as NAME:` (one item)
    paren_headers: bool = False     # `if(c):`, `while(c):`, `elif(c):` (no space, parenthesised)
    defs: bool = False              # nested `def NAME(PARAM):` (at most one parameter: two could
    #                                 repeat a name, which no regular language can rule out)
    inline_bodies: bool = False     # one-line compound statements: `if c: stmt`, `for ...: stmt`
    comments: bool = True           # comment lines and trailing comments
    chain_statements: bool = False  # statements between two open headers (else headers only)
    start_levels: int = 2           # indentations the middle may start at: the enclosing block's,
    #                                 then outer ones (each one more copy of the language)
    excluded_names: frozenset = frozenset()   # more names to keep out (global/nonlocal ones)

    @property
    def header_depth(self) -> int:
        return self.max_expr_depth if self.cond_depth is None else min(self.cond_depth,
                                                                        self.max_expr_depth)


DEFAULT_SUBSET = PythonSubset()


@dataclass(frozen=True)
class BlockShape:
    """Where a line-boundary middle sits: its indentation and how the suffix goes on.

    ``chain``: for each open header the middle must end with (outermost first), the header
    kinds the suffix can continue (a subset of ``if for while elif else try``) and whether a
    ``break``/``continue`` of the suffix makes it a loop. ``tail``: when the suffix starts with a
    clause at ``indent`` itself, the statement kinds the middle must end with (``if``, ``loop``).
    """

    indent: str
    unit: str = "    "
    allow_return: bool = False
    allow_loop_control: bool = False
    chain: tuple[frozenset, ...] = ()
    tail: frozenset | None = None

    @property
    def end_indent(self) -> str:
        return self.indent + self.unit * len(self.chain)


def _trie(words: Iterable[str]) -> dict:
    root: dict = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True
    return root


def _ranges(chars: str) -> list[tuple[int, int]]:
    codes = sorted({ord(c) for c in chars})
    out: list[tuple[int, int]] = []
    for c in codes:
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out
