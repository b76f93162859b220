"""Spec stage: a regular approximation of Python statements, for holes in Python files.

A hole at a line boundary of a Python file is filled with *complete lines*: simple statements
(expression statements, assignments incl. tuple targets, augmented assignments, ``return``,
``pass``, ``break`` / ``continue``, optionally ``raise`` / ``del`` / ``assert`` / ``import``) and,
with ``max_block_depth > 0``, compound statements (``if`` / ``elif`` / ``else``, ``for``,
``while``, optionally ``with``) whose bodies are lines one indentation unit deeper. Expressions
are a bounded regular approximation: names, numbers, strings, calls, attributes, subscripts and
slices, list / tuple (optionally dict) displays, unary / binary / comparison / boolean operators,
``not``, ``in``, ``is``, brackets nested at most ``max_expr_depth``. A hole inside a line, where
a complete expression is expected, takes one expression.

**Guarantee.** Every text of a hole's language, put in the hole, gives a file that compiles
(``compile(prefix + middle + suffix, ..., "exec")``). Names exclude every keyword (``if`` is
not a name, ``ifx`` is: a trie of the keywords, exact), ``__debug__``, and every name the file
declares ``global`` / ``nonlocal`` (using one before its declaration is a ``SyntaxError``).
Legal oddities such as ``(1)(2)`` compile with a ``SyntaxWarning``.

**Soundness argument.** (1) The prefix is tokenized: it must end at a statement boundary (not
inside a string, a bracket or a continuation line). (2) Each line of the language is a complete
logical line (brackets balanced, strings closed, no backslash continuation, ends with a newline)
that is a valid statement in isolation, given the permissions it is built with (``return`` only
inside a function, ``break`` / ``continue`` only inside a loop, no ``yield`` / ``await`` /
``global``). (3) Lines sit at the indentations the shape allows, so the indentation stack the
suffix meets is the one of a *witness* middle (``pass`` at the same level, plus the same open
headers), and the parser meets the suffix in the same situation as after the witness: the same
enclosing blocks, a complete statement before it, and for each header the suffix continues, a
kind (``if``/``for``/...) the suffix's clauses (``elif`` / ``else`` / ``except``) and
``break`` / ``continue`` accept. (4) Each of these facts is checked on the concrete file by
``compile`` probes (:func:`hole_context`): the witness with each allowed header kind at each
level, ``return 0``, ``break``, ``continue``, and the deepest nesting of loops the language
allows (Python's static block limit). The probes and the argument are cross-checked by tests that
draw random texts of the language (hypothesis) at every statement start of stdlib modules.

**Shapes** (``Ls``: the indentation of the prefix's last logical line, one unit deeper after a
line ending with ``:``; ``J``: the indentation of the suffix's first code line):

- the middle writes lines at ``Ls``, then may *dedent* to the prefix's outer block levels (up to
  ``start_levels`` indentations in all; each level probed, a level is only entered after the ones
  before it); after a line ending with ``:`` the first line is in that body;
- ``J`` deeper than where the middle ends: the suffix continues a block the middle opens, so the
  middle ends with *open headers* (``if`` / ``for`` / ``while`` / ``elif`` / ``else`` or ``try``
  when the suffix brings the ``except``; at an outer level also ``else:`` / ``elif`` continuing
  the prefix's own statement) reaching ``J``; the header kinds offered are those the probes
  accept (``elif`` in the suffix needs ``if``, a ``break`` needs a loop...);
- ``J == Ls`` and the suffix starts with ``elif`` / ``else``: the middle ends with an ``if``.

**Cost.** A regex for this language would be exponentially long, so it is built directly: an NFA
whose repeated parts are loops, not copies (``a (, a)*`` is one ``a`` with a back edge),
determinised (per-state successor groups, memoised closures) and minimised. Its size is a
product: (keyword-free name, ~90 states) x (bracket contexts) x (statement contexts) x
(indentation levels), and the decoder's work per step is (states x token classes) per position.
Measured on the 2,000-token test BPE (one loaded CPU core; determinise + lift to tokens): an
expression hole 1.5k states (1.1 s); one indentation level of simple statements 2.1k (1.3 s); the
default subset in a function body (two levels) 4.3k (3.4 s), with an open header or a tail 5.9k
(4.5 s), on HumanEval single-line holes 2-14k (mean ~7k); ``max_expr_depth=1`` roughly halves
these, ``max_block_depth=1`` multiplies them by ~3-5 (a copy of the line language per body kind).
Automata are cached per (language, vocabulary).

Departures (never offered): lambda, f-strings, bytes / raw strings, string escapes other than
``\\ \' \" \n \r \t \0``, numbers other than decimal ints and floats, starred expressions,
walrus, ``yield`` / ``await``, decorators / ``def`` / ``class`` inside the middle, chained
assignment, annotations, ``global`` / ``nonlocal``, one-line compound statements (``if x: y``),
keyword arguments other than one trailing ``name=value`` (optional), more than one ``with`` item,
dedenting below the levels probed.
"""

from __future__ import annotations

import io
import keyword
import re
import threading
import time
import tokenize
import warnings
from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np

from ..automata import byte_dfa as _bd
from ..automata.byte_dfa import ByteDFA
from ..automata.lru import LRU
from ..errors import CompileLimitError, SpecError

try:  # Python 3.11+
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse

__all__ = ["PythonSubset", "DEFAULT_SUBSET", "BlockShape", "HoleContext", "python_block_regex",
           "python_block_dfa", "python_expr_dfa", "python_expr_key", "hole_context",
           "guess_witness", "compiles", "sample_text", "RESERVED_NAMES"]

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


# --- automaton construction ----------------------------------------------------------------------

class _Builder:
    """Wires an NFA over bytes (``byte_dfa._NFA``) for one language; fragments are built between
    given states. A fragment never adds edges *out of* its exit state and never loops back to its
    entry state (both belong to the caller), so shared states cannot leak paths."""

    def __init__(self, cfg: PythonSubset, timeout_s: float, max_states: int):
        self.cfg = cfg
        self.nfa = _bd._NFA(time.monotonic() + timeout_s, max_states * 8)
        self.excluded = RESERVED_NAMES | frozenset(cfg.excluded_names)
        self._trie = _trie(self.excluded)
        self._memo: dict = {}

    # -- primitives --
    def st(self) -> int:
        return self.nfa.state()

    def eps(self, a: int, b: int) -> None:
        self.nfa.eps[a].append(b)

    def lit(self, a: int, text: str, b: int) -> None:
        data = text.encode()
        if not data:
            self.eps(a, b)
            return
        cur = a
        for i, x in enumerate(data):
            nxt = b if i == len(data) - 1 else self.st()
            self.nfa.edges[cur].append((x, x, nxt))
            cur = nxt

    def chars(self, a: int, chars: str, b: int) -> None:
        for lo, hi in _ranges(chars):
            self.nfa.edges[a].append((lo, hi, b))

    def rx(self, a: int, pattern: str, b: int) -> None:
        parsed = _sre_parse.parse(pattern)
        self.nfa.build(list(parsed), a, b, parsed.state.flags)

    def eol(self, a: int, b: int) -> None:
        """Optional trailing spaces and comment, then the newline (memoised per target)."""
        key = ("eol", b)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self.st()
            sp = self.st()
            self.lit(hit, "\n", b)
            self.lit(hit, " ", sp)
            self.lit(sp, " ", sp)
            self.lit(sp, "\n", b)
            if self.cfg.comments:
                c = self.st()
                self.lit(hit, "#", c)
                self.lit(sp, "#", c)
                c2 = self.st()
                self.rx(c, _COMMENT, c2)
                self.lit(c2, "\n", b)
        self.eps(a, hit)

    # -- names --
    def name(self, a: int, b: int) -> None:
        """An ASCII identifier that is not an excluded word (a trie of the excluded words: each
        node offers "another character, then anything", a child, or the end)."""
        free = self.st()
        self.chars(free, _ID_CONT, free)
        self.eps(free, b)

        def walk(node: dict, s: int, depth: int) -> None:
            allowed = _ID_START if depth == 0 else _ID_CONT
            other = "".join(c for c in allowed if c not in node)
            if other:
                self.chars(s, other, free)
            for c in sorted(k for k in node if k):
                t = self.st()
                self.lit(s, c, t)
                walk(node[c], t, depth + 1)
            if depth > 0 and "" not in node:
                self.eps(s, b)

        walk(self._trie, a, 0)

    def dotted(self, a: int, b: int) -> None:
        m = self.st()
        self.eps(a, m)
        q = self.st()
        self.name(m, q)
        self.eps(q, b)
        self.lit(q, ".", m)

    # -- expressions --
    def expr(self, a: int, b: int, d: int) -> None:
        """A full expression (``test``) between a and b, brackets nested at most d."""
        if not self.cfg.conditional:
            self.chain(a, b, d)
            return
        m = self.st()
        self.eps(a, m)
        c1 = self.st()
        self.chain(m, c1, d)
        self.eps(c1, b)
        m2, c2 = self.st(), self.st()
        self.lit(c1, " if ", m2)
        self.chain(m2, c2, d)
        self.lit(c2, " else ", m)        # right-associative: a if b else c if d else e

    def chain(self, a: int, b: int, d: int) -> None:
        """Operands joined by binary / comparison / boolean operators, with `not` prefixes where
        the grammar allows them (at the start and after `and` / `or`)."""
        m0, m1, x = self.st(), self.st(), self.st()
        self.eps(a, m0)
        self.lit(m0, "not ", m0)
        self.eps(m0, m1)
        an, al, name_in = self.operand(m1, d)
        self.eps(an, x)
        self.eps(al, x)
        self.eps(x, b)
        sp = self.st()
        self.lit(x, " ", sp)
        for op in _SYM_OPS:
            self.lit(x, op, m1)
            y = self.st()
            self.lit(sp, op, y)
            self.lit(y, " ", m1)
        self.lit(sp, "in ", m1)
        self.lit(sp, "not in ", m1)
        self.lit(sp, "and ", m0)
        self.lit(sp, "or ", m0)
        # `is` only after a name-based operand, and before None / True / False or a name:
        # a literal next to `is` is a SyntaxWarning
        mi = self.st()
        self.lit(an, " is ", mi)
        self.lit(an, " is not ", mi)
        self.eps(mi, name_in)
        self.rx(mi, "None|True|False", al)

    def operand(self, m1: int, d: int):
        """Returns (exit after a name-based primary, exit after a literal, name entry)."""
        cfg = self.cfg
        u, name_in, an, al = self.st(), self.st(), self.st(), self.st()
        self.eps(m1, u)
        self.chars(u, "-+~", u)
        self.eps(u, name_in)
        self.name(name_in, an)
        self.lit(an, ".", name_in)
        self.rx(u, _NUMBER, al)
        s = self.st()
        self.rx(u, _STRING, s)
        self.eps(s, al)
        self.lit(s, ".", name_in)               # "sep".join(...)
        self.rx(u, "None|True|False", al)
        self.lit(u, "[]", al)
        self.lit(u, "{}", al)
        if d > 0:
            # calls and parentheses share one argument list (and exit: trailers may follow)
            o = self.st()
            self.lit(an, "(", o)
            if cfg.keyword_args:
                o2 = self.st()
                self.lit(u, "(", o2)
                self.args(o, an, d - 1, kw=True)
                self.args(o2, an, d - 1, kw=False)
            else:
                self.lit(u, "(", o)
                self.args(o, an, d - 1, kw=False)
            o = self.st()
            self.lit(an, "[", o)
            self.subscript(o, an, min(d - 1, cfg.subscript_depth))
            o = self.st()
            self.lit(u, "[", o)
            self.list_display(o, al, min(d - 1, cfg.list_depth))
            if cfg.dicts:
                o = self.st()
                self.lit(u, "{", o)
                self.dict_display(o, al, d - 1)
        return an, al, name_in

    def args(self, o: int, out: int, d: int, kw: bool) -> None:
        """After "(": [e (, e)* [,]] ")" and optionally one last name=e."""
        self.lit(o, ")", out)
        m, q, c = self.st(), self.st(), self.st()
        self.eps(o, m)
        self.expr(m, q, d)
        self.rx(q, ", ?", c)
        self.eps(c, m)
        self.lit(q, ")", out)
        self.lit(c, ")", out)
        if kw:
            k, k2, k3, k4 = self.st(), self.st(), self.st(), self.st()
            self.eps(o, k)
            self.eps(c, k)
            self.name(k, k2)
            self.lit(k2, "=", k3)
            self.expr(k3, k4, d)
            self.rx(k4, ",?\\)", out)

    def subscript(self, o: int, out: int, d: int) -> None:
        """After "[": e | e? ":" e? [":" step] then "]"; the step is a literal int."""
        e1, c1, e2, c2, e3 = (self.st() for _ in range(5))
        self.expr(o, e1, d)
        self.lit(e1, "]", out)
        self.lit(o, ":", c1)
        self.lit(e1, ":", c1)
        self.lit(c1, "]", out)
        self.expr(c1, e2, d)
        self.lit(e2, "]", out)
        self.lit(c1, ":", c2)
        self.lit(e2, ":", c2)
        self.lit(c2, "]", out)
        self.rx(c2, "-?[1-9][0-9]*", e3)
        self.lit(e3, "]", out)

    def list_display(self, o: int, out: int, d: int) -> None:
        m, q, c = self.st(), self.st(), self.st()
        self.eps(o, m)
        if not self.cfg.comprehensions:
            self.expr(m, q, d)
            self.rx(q, ", ?", c)
            self.eps(c, m)
            self.lit(q, "]", out)
            self.lit(c, "]", out)
            return
        # the first element may start a comprehension; later ones may not
        q1, m2 = self.st(), self.st()
        self.expr(m, q1, d)
        self.lit(q1, "]", out)
        self.rx(q1, ", ?", c)
        self.eps(c, m2)
        self.expr(m2, q, d)
        self.rx(q, ", ?", c)
        self.lit(q, "]", out)
        self.lit(c, "]", out)
        f, t, i, e, g, h = (self.st() for _ in range(6))
        self.lit(q1, " for ", f)
        self.targets(f, t, simple=True)
        self.lit(t, " in ", i)
        self.chain(i, e, d)
        self.lit(e, "]", out)
        self.lit(e, " if ", g)
        self.chain(g, h, d)
        self.lit(h, "]", out)

    def dict_display(self, o: int, out: int, d: int) -> None:
        m, k, v0, q, c = (self.st() for _ in range(5))
        self.eps(o, m)
        self.expr(m, k, d)
        self.rx(k, ": ?", v0)
        self.expr(v0, q, d)
        self.rx(q, ", ?", c)
        self.eps(c, m)
        self.lit(q, "}", out)
        self.lit(c, "}", out)

    def exprlist(self, a: int, b: int, d: int) -> None:
        m, q = self.st(), self.st()
        self.eps(a, m)
        self.expr(m, q, d)
        self.eps(q, b)
        self.rx(q, ", ?", m)

    def target(self, a: int, b: int) -> None:
        """name (.name | [subscript])*: something assignable (no call at the end)."""
        m, q = self.st(), self.st()
        self.eps(a, m)
        self.name(m, q)
        self.eps(q, b)
        self.lit(q, ".", m)
        o = self.st()
        self.lit(q, "[", o)
        self.subscript(o, q, 0)

    def targets(self, a: int, b: int, *, simple: bool = False) -> None:
        m, q = self.st(), self.st()
        self.eps(a, m)
        if simple:
            self.name(m, q)
        else:
            self.target(m, q)
        self.eps(q, b)
        self.rx(q, ", ?", m)

    # -- statements and blocks --
    def simple_line(self, ls: int, l1: int, loop_ok: bool, ret_ok: bool, d: int) -> None:
        """One simple statement after the indentation (ls), through the newline (to l1)."""
        cfg = self.cfg
        rhs, eol = self.st(), self.st()
        self.exprlist(rhs, eol, d)
        self.eol(eol, l1)
        self.eps(ls, rhs)                                 # expression statement
        t1, t1x, tn = self.st(), self.st(), self.st()
        self.target(ls, t1)                               # first target: = or op=
        self.rx(t1, ", ?", t1x)
        self.targets(t1x, tn, simple=True)
        asg = self.st()
        self.rx(t1, " ?= ?", asg)
        self.rx(tn, " ?= ?", asg)
        self.eps(asg, rhs)
        for op in _AUG_OPS:
            self.lit(t1, " " + op + " ", rhs)
        self.rx(ls, "pass", eol)
        if ret_ok:
            self.lit(ls, "return", eol)
            self.lit(ls, "return ", rhs)
        if loop_ok:
            self.rx(ls, "break|continue", eol)
        if cfg.raise_:
            self.lit(ls, "raise", eol)
            r = self.st()
            self.lit(ls, "raise ", r)
            self.expr(r, eol, d)
        if cfg.assert_:
            r, r2, r3 = self.st(), self.st(), self.st()
            self.lit(ls, "assert ", r)
            self.expr(r, r2, d)
            self.eps(r2, eol)
            self.lit(r2, ", ", r3)
            self.expr(r3, eol, d)
        if cfg.del_:
            r = self.st()
            self.lit(ls, "del ", r)
            self.targets(r, eol)
        if cfg.import_:
            self._imports(ls, eol)

    def _imports(self, ls: int, eol: int) -> None:
        i, i2, i3 = self.st(), self.st(), self.st()
        self.lit(ls, "import ", i)
        self.dotted(i, i2)
        self.eps(i2, eol)
        self.lit(i2, " as ", i3)
        self.name(i3, eol)
        f, f2, f3, f4, f5 = (self.st() for _ in range(5))
        self.lit(ls, "from ", f)
        self.dotted(f, f2)
        self.lit(f2, " import ", f3)
        self.name(f3, f4)
        self.eps(f4, eol)
        self.lit(f4, " as ", f5)
        self.name(f5, eol)

    def suite(self, ind: str, loop_ok: bool, depth_left: int, exit_: int, *, nonempty: bool,
              ret_ok: bool, extra=None) -> int:
        """Statements at indentation ``ind`` (blank and comment lines anywhere); returns the
        entry state. ``exit_`` is entered after the last line. Memoised on everything that
        decides its language, so equal bodies (e.g. if- and loop-bodies with the same
        continuation) are built once."""
        key = ("suite", ind, loop_ok, depth_left, exit_, nonempty, ret_ok, extra is None)
        if extra is None and key in self._memo:
            return self._memo[key]
        cfg = self.cfg
        d = cfg.max_expr_depth
        if len(ind) > len(self.top_indent) and cfg.body_expr_depth is not None:
            d = min(d, cfg.body_expr_depth)
        l0, l1, ls = self.st(), self.st(), self.st()
        for s in ((l0, l1) if nonempty else (l1,)):
            self.lit(s, "\n", s)
            if cfg.comments:
                c = self.st()
                self.lit(s, ind + "#", c)
                self.rx(c, _COMMENT + "\n", s)
            self.lit(s, ind, ls)
        self.eps(l1, exit_)
        self.simple_line(ls, l1, loop_ok, ret_ok, d)
        aif = None
        if depth_left > 0:
            aif = self._compounds(ind, ls, l1, loop_ok, depth_left, ret_ok)
        if extra is not None:
            extra(ls, l1, aif)
        entry = l0 if nonempty else l1
        if extra is None:
            self._memo[key] = entry
        return entry

    def _compounds(self, ind: str, ls: int, l1: int, loop_ok: bool, depth_left: int,
                   ret_ok: bool):
        """if / elif / else, for, while, with at ``ind``; returns the after-if state."""
        cfg = self.cfg
        unit = self.unit
        inner = ind + unit
        hd = cfg.header_depth
        # after an if-body: elif / else may follow; when elif is off, loop bodies share it
        aif = self.st()
        self.eps(aif, l1)
        if_body = self.suite(inner, loop_ok, depth_left - 1, aif, nonempty=True, ret_ok=ret_ok)
        cond_if = self._header_expr(if_body, hd)
        self.lit(ls, "if ", cond_if)
        if cfg.elif_:
            self.lit(aif, ind + "elif ", cond_if)
        if cfg.else_:
            else_body = self.suite(inner, loop_ok, depth_left - 1, l1, nonempty=True,
                                   ret_ok=ret_ok)
            c = self.st()
            self.lit(aif, ind + "else:", c)
            self.eol(c, else_body)
        if cfg.loops:
            after_loop = l1 if cfg.elif_ or not cfg.else_ else aif
            loop_body = self.suite(inner, loop_ok or cfg.loop_break, depth_left - 1, after_loop,
                                   nonempty=True, ret_ok=ret_ok)
            cond_loop = self._header_expr(loop_body, hd)
            self.lit(ls, "while ", cond_loop)
            f, f2 = self.st(), self.st()
            self.lit(ls, "for ", f)
            self.targets(f, f2, simple=True)
            self.lit(f2, " in ", cond_loop)
        if cfg.with_:
            body = self.suite(inner, loop_ok, depth_left - 1, l1, nonempty=True, ret_ok=ret_ok)
            w, w2, w3 = self.st(), self.st(), self.st()
            self.lit(ls, "with ", w)
            self.expr(w, w2, hd)
            self.lit(w2, " as ", w3)
            c = self.st()
            self.name(w3, c)
            self.eps(w2, c)
            c2 = self.st()
            self.lit(c, ":", c2)
            self.eol(c2, body)
        return aif

    def _header_expr(self, body: int, d: int) -> int:
        """Entry of `EXPR:` + newline leading into ``body`` (memoised per body)."""
        key = ("hdr", body, d)
        if key not in self._memo:
            e, c, c2 = self.st(), self.st(), self.st()
            self.expr(e, c, d)
            self.lit(c, ":", c2)
            self.eol(c2, body)
            self._memo[key] = e
        return self._memo[key]

    def levels(self, shapes, final: int, pending: bool = False) -> int:
        """The whole middle: lines at ``shapes[0].indent``, then optionally at each next
        (outer) shape's indentation in turn (a dedent closes the blocks in between); it ends
        through the last level's open headers / tail. Returns the initial state."""
        nxt = (None, None)
        for i in reversed(range(len(shapes))):
            self._memo.clear()
            nxt = self._level(shapes[i], final, nxt, must_write=(i == 0 and pending))
        return nxt[0]

    def _level(self, shape: BlockShape, final: int, nxt, must_write: bool):
        """(entry with nothing written yet, entry after some lines) of one start level."""
        self.unit = shape.unit
        self.top_indent = shape.end_indent
        cfg = self.cfg
        n = len(shape.chain)
        hd = cfg.header_depth
        ret = shape.allow_return
        loop_ok = [shape.allow_loop_control]
        for kinds in shape.chain:          # a header forced to be a loop allows break below it
            loop_ok.append(loop_ok[-1] or kinds <= {"for", "while"})

        def chain_level(i: int) -> int:
            ind = shape.indent + shape.unit * i
            depth_left = max(0, cfg.max_block_depth - i)
            if i == n:                     # the body the suffix goes on with
                return self.suite(ind, loop_ok[i], depth_left, final, nonempty=False, ret_ok=ret)
            nxt_c = chain_level(i + 1)
            kinds = shape.chain[i]
            if not cfg.chain_statements:
                h0 = self.st()
                self.lit(h0, "\n", h0)
                self._open_headers([h0], None, ind, kinds, nxt_c, hd)
                return h0
            x = self.st()
            return self.suite(ind, loop_ok[i], depth_left, x, nonempty=False, ret_ok=ret,
                              extra=lambda ls, l1, aif: self._open_headers(
                                  [x], aif, ind, kinds, nxt_c, hd))

        ind = shape.indent
        x = self.st()                      # after at least one line at this level
        got: dict = {}

        def hook(ls, l1, aif):
            got["l1"], got["aif"] = l1, aif

        l0 = self.suite(ind, loop_ok[0], max(0, cfg.max_block_depth), x, nonempty=True,
                        ret_ok=ret, extra=hook)
        l1 = got["l1"]
        nxt_c = None
        if n:
            nxt_c = chain_level(1)
            self._open_headers([x, l0], got["aif"], ind, shape.chain[0], nxt_c, hd)
        elif shape.tail:
            self._tail_if([x, l0], ind, loop_ok[0], ret, final)
        else:
            self.eps(x, final)
        if nxt[1] is not None:
            self.eps(x, nxt[1])            # go on at the next outer level
        if nxt[0] is not None and not must_write:
            self.eps(l0, nxt[0])           # or start there
        if n and shape.chain[0] & {"pelse", "pelif"}:
            # first line at this level: else / elif continuing the prefix's statement here
            firsts = (self.st(), self.st())
            for f, target in zip(firsts, (l0, l1)):
                self.eps(f, target)
                if "pelse" in shape.chain[0]:
                    c = self.st()
                    self.lit(f, ind + "else:", c)
                    self.eol(c, nxt_c)
                if "pelif" in shape.chain[0]:
                    self.lit(f, ind + "elif ", self._header_expr(nxt_c, hd))
            return firsts
        return l0, l1

    def _open_headers(self, froms, aif, ind: str, kinds, nxt: int, hd: int) -> None:
        """A header whose body the suffix goes on with (``nxt``: the body's level), after the
        indentation, from each state of ``froms``; elif / else from the after-if state."""
        cfg = self.cfg
        h = self.st()
        for f in froms:
            self.lit(f, ind, h)
        hdr = self._header_expr(nxt, hd)
        if "if" in kinds:
            self.lit(h, "if ", hdr)
        if "while" in kinds:
            self.lit(h, "while ", hdr)
        if "for" in kinds:
            f, f2 = self.st(), self.st()
            self.lit(h, "for ", f)
            self.targets(f, f2, simple=True)
            self.lit(f2, " in ", hdr)
        if "try" in kinds:
            c = self.st()
            self.lit(h, "try:", c)
            self.eol(c, nxt)
        if aif is not None and "elif" in kinds and cfg.elif_:
            self.lit(aif, ind + "elif ", hdr)
        if aif is not None and "else" in kinds and cfg.else_:
            c = self.st()
            self.lit(aif, ind + "else:", c)
            self.eol(c, nxt)

    def _tail_if(self, froms, ind: str, loop_ok: bool, ret_ok: bool, final: int) -> None:
        """The if-statement whose clause the suffix brings: the middle ends right after an if
        (or elif) body."""
        t, h, aif = self.st(), self.st(), self.st()
        for f in froms:
            self.eps(f, t)
        self.eps(aif, final)
        body = self.suite(ind + self.unit, loop_ok, 0, aif, nonempty=True, ret_ok=ret_ok)
        cond = self._header_expr(body, self.cfg.header_depth)
        self.lit(t, ind, h)
        self.lit(h, "if ", cond)
        if self.cfg.elif_:
            self.lit(aif, ind + "elif ", cond)


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


# --- cached automata -----------------------------------------------------------------------------

DFA_CACHE_SIZE = 64
_DFA_CACHE = LRU(DFA_CACHE_SIZE)


def _cached_dfa(key: str, build) -> ByteDFA:
    return _DFA_CACHE.get_or_build(key, build)


def _determinize(b: _Builder, s: int, t: int, max_states: int) -> ByteDFA:
    """The shared subset construction (:func:`byte_dfa.subset_construction`), with errors
    worded for Python holes."""
    try:
        return _bd.subset_construction(b.nfa, s, t, max_states)
    except _bd._Timeout:
        raise CompileLimitError(
            "building the Python automaton took too long; lower max_expr_depth / "
            "max_block_depth or raise CompileLimits.regex_timeout_s", limit="regex_timeout_s") from None
    except _bd.TooManyStates:
        raise CompileLimitError(
            f"the Python automaton passes {max_states:,} states; lower "
            "max_expr_depth / max_block_depth or raise CompileLimits.max_states",
            limit="max_states", value=max_states) from None


def python_block_regex(indent: str, *, max_block_depth: int = DEFAULT_SUBSET.max_block_depth,
                       max_expr_depth: int = DEFAULT_SUBSET.max_expr_depth,
                       allow_return: bool, allow_loop_control: bool, unit: str = "    ",
                       subset: PythonSubset | None = None, **features) -> str:
    """The key of the language of complete lines at ``indent`` (see the module docstring).

    The language is too large for a plain regex (it would be exponentially long), so this
    returns a *key*: a string naming it, which :func:`python_block_dfa` turns into its byte
    automaton and ``Template``/``infill`` use as the hole's label. The key is not a pattern
    ``re`` accepts (it starts with ``\\p{cdlm-python}``), so it cannot be mistaken for one.
    ``features``: any other :class:`PythonSubset` field.
    """
    cfg = replace(subset or DEFAULT_SUBSET, max_block_depth=max_block_depth,
                  max_expr_depth=max_expr_depth, **features)
    shape = BlockShape(indent=indent, unit=unit, allow_return=allow_return,
                       allow_loop_control=allow_loop_control)
    return _block_key(shape, cfg)


def _block_key(shape, cfg: PythonSubset, pending: bool = False) -> str:
    key = "\\p{cdlm-python}block " + repr((shape, _cfg_tuple(cfg), pending))
    with _KEYS_LOCK:
        _KEYS[key] = (shape, cfg, pending)
    return key


def _cfg_tuple(cfg: PythonSubset):
    return tuple((f, getattr(cfg, f) if f != "excluded_names" else tuple(sorted(cfg.excluded_names)))
                 for f in cfg.__dataclass_fields__)


_KEYS: dict[str, tuple] = {}
_KEYS_LOCK = threading.Lock()


def python_block_dfa(shape_or_key, cfg: PythonSubset | None = None, *, pending: bool = False,
                     timeout_s: float = 30.0, max_states: int = 200_000) -> ByteDFA:
    """The minimal byte DFA of a block language (cached per key): one :class:`BlockShape`, or a
    tuple of them, one per indentation level the middle may use, innermost first (lines at the
    first, then optionally at each next one: the middle may dedent). ``pending``: the first
    level is a body the prefix's last line opened, so it must hold a line before any dedent."""
    if isinstance(shape_or_key, str):
        key = shape_or_key
        shapes, cfg, pending = _parse_key(key)
    else:
        shapes, cfg = shape_or_key, cfg or DEFAULT_SUBSET
        key = _block_key(shapes, cfg, pending)
    if isinstance(shapes, BlockShape):
        shapes = (shapes,)

    def build() -> ByteDFA:
        b = _Builder(cfg, timeout_s, max_states)
        final = b.st()
        start = b.levels(shapes, final, pending=pending)
        return _determinize(b, start, final, max_states)

    return _cached_dfa(key, build)


def _parse_key(key: str):
    """The language a key names: only keys made by this process (a key is never evaluated)."""
    with _KEYS_LOCK:
        hit = _KEYS.get(key)
    if hit is None:
        raise SpecError(f"not a Python block language key made in this process: {key[:80]!r}",
                        hint="pass BlockShape values instead of a key")
    return hit


def python_expr_key(cfg: PythonSubset | None = None, *, tuple_ok: bool = False) -> str:
    cfg = cfg or DEFAULT_SUBSET
    return "\\p{cdlm-python}expr " + repr((tuple_ok, _cfg_tuple(cfg)))


def python_expr_dfa(cfg: PythonSubset | None = None, *, tuple_ok: bool = False,
                    timeout_s: float = 30.0, max_states: int = 200_000) -> ByteDFA:
    """One expression (or, with ``tuple_ok``, an unparenthesised tuple), on one line."""
    cfg = cfg or DEFAULT_SUBSET

    def build() -> ByteDFA:
        b = _Builder(cfg, timeout_s, max_states)
        s, t = b.st(), b.st()
        if tuple_ok:
            b.exprlist(s, t, cfg.max_expr_depth)
        else:
            b.expr(s, t, cfg.max_expr_depth)
        return _determinize(b, s, t, max_states)

    return _cached_dfa(python_expr_key(cfg, tuple_ok=tuple_ok), build)


def python_items_key(cfg: PythonSubset | None = None, *, dict_items: bool = False) -> str:
    cfg = cfg or DEFAULT_SUBSET
    return "\\p{cdlm-python}items " + repr((dict_items, _cfg_tuple(cfg)))


def python_items_dfa(cfg: PythonSubset | None = None, *, dict_items: bool = False,
                     timeout_s: float = 30.0, max_states: int = 200_000) -> ByteDFA:
    """Lines inside an open bracket: each line is optional spaces, one item (an expression, or
    ``key: value`` in a dict), a comma, then the end of the line (a comment may follow). Inside
    brackets indentation means nothing, and a comma after every item keeps any number of items
    (zero included) valid wherever one item followed by a comma is."""
    cfg = cfg or DEFAULT_SUBSET

    def build() -> ByteDFA:
        b = _Builder(cfg, timeout_s, max_states)
        s, t, line = b.st(), b.st(), b.st()
        b.eps(s, line)
        b.eps(line, t)
        start, sp, item = b.st(), b.st(), b.st()
        b.eps(line, start)
        b.lit(start, " ", sp)
        b.lit(sp, " ", sp)
        b.eps(start, item)
        b.eps(sp, item)
        end = b.st()
        if dict_items:
            key, colon, value = b.st(), b.st(), b.st()
            b.expr(item, key, cfg.max_expr_depth)
            b.lit(key, ":", colon)
            b.lit(colon, " ", value)
            b.eps(colon, value)
            b.expr(value, end, cfg.max_expr_depth)
        else:
            b.expr(item, end, cfg.max_expr_depth)
        comma = b.st()
        b.lit(end, ",", comma)
        b.eol(comma, line)
        return _determinize(b, s, t, max_states)

    return _cached_dfa(python_items_key(cfg, dict_items=dict_items), build)


# --- reading the file around a hole ------------------------------------------------------------

def compiles(source: str) -> bool:
    """Whether ``source`` compiles (``exec`` mode; warnings silenced). Never runs it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "<infill>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


@dataclass(frozen=True)
class HoleContext:
    """What a hole in a Python file may hold, read from the file and checked by probes.

    ``kind``: ``"block"`` (complete lines; ``shape``), ``"expr"`` (one expression inside a
    line; ``tuple_ok`` when an unparenthesised tuple also fits) or ``"items"`` (whole lines
    inside an open bracket, ``item,`` each; ``dict_items`` for ``key: value,``). ``witness``: a shortest middle
    the probes compiled, used to stand for this hole while another hole is analysed.
    """

    kind: str
    shape: BlockShape | None
    tuple_ok: bool
    witness: str
    excluded_names: frozenset = frozenset()
    shapes: tuple = ()               # the indentations the middle may use, innermost first
    pending: bool = False            # the first level is a body the prefix opened (non-empty)
    dict_items: bool = False         # kind "items": the bracket is a dict (``key: value,``)


_CLAUSES = ("elif", "else", "except", "finally")
_COMPOUND = ("if", "elif", "else", "for", "while", "try", "except", "finally", "with", "def",
             "class", "async", "match", "case")


def _logical_lines(source: str):
    """(indentation, first token, last significant token, row) of each logical line, and the
    tokenizer's final state (ok / error message)."""
    lines, first, last = [], None, None
    phys_lines = source.splitlines(True)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.COMMENT,
                            tokenize.ENCODING):
                continue
            if tok.type == tokenize.NEWLINE:
                if first is not None:
                    row = first.start[0] - 1
                    phys = phys_lines[row] if row < len(phys_lines) else ""
                    ind = phys[:len(phys) - len(phys.lstrip(" \t"))]
                    lines.append((ind, first.string, last.string, first.start[0]))
                first = last = None
                continue
            if tok.type == tokenize.ENDMARKER:
                break
            if first is None:
                first = tok
            last = tok
    except (tokenize.TokenError, IndentationError, SyntaxError) as e:
        return lines, str(e)
    return lines, None


def _line_indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" \t"))]


def _first_code_line(text: str):
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return line
    return None


def _indent_unit(source: str) -> str:
    """The file's indentation step: the most common increase between logical lines."""
    lines, _ = _logical_lines(source)
    counts: dict[str, int] = {}
    prev = ""
    for ind, _, _, _ in lines:
        if len(ind) > len(prev) and ind.startswith(prev):
            step = ind[len(prev):]
            counts[step] = counts.get(step, 0) + 1
        prev = ind
    if not counts:
        return "    "
    return max(counts.items(), key=lambda kv: (kv[1], kv[0] == "    "))[0]


def _declared_names(source: str) -> frozenset:
    """Names in global / nonlocal statements anywhere in ``source`` (tokenized, no parse)."""
    out, expect = set(), False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and tok.string in ("global", "nonlocal"):
                expect = True
            elif expect and tok.type == tokenize.NAME:
                out.add(tok.string)
            elif expect and tok.type == tokenize.OP and tok.string == ",":
                pass
            else:
                expect = False
    except (tokenize.TokenError, IndentationError, SyntaxError):
        for m in re.finditer(r"\b(?:global|nonlocal)\s+([A-Za-z_][\w ,]*)", source):
            out |= {n.strip() for n in m.group(1).split(",") if n.strip()}
    return frozenset(out)


def hole_context(prefix: str, suffix: str, *, cfg: PythonSubset | None = None,
                 document=None) -> HoleContext:
    """Decide what a hole between ``prefix`` and ``suffix`` may hold (see the module docstring).

    ``document(middle)`` returns the whole file with ``middle`` in this hole (and the other
    holes' witnesses in theirs); by default ``prefix + middle + suffix``. Raises
    :class:`SpecError` when the position supports neither complete lines nor an expression.
    """
    cfg = cfg or DEFAULT_SUBSET
    doc = document or (lambda m: prefix + m + suffix)
    at_line_start = prefix == "" or prefix.endswith("\n")
    if not at_line_start:
        return _expr_context(prefix, suffix, doc, cfg)
    lines, err = _logical_lines(prefix)
    if err is not None:
        if "multi-line statement" in err and not prefix.rstrip("\n").endswith("\\"):
            items = _items_context(prefix, suffix, doc, cfg)
            if items is not None:
                return items
        raise SpecError("the hole is not at a statement boundary: the text before it ends "
                        f"inside a statement, bracket or string ({err})",
                        hint="put the hole at the start of a line between statements, at the "
                             "start of a line of items inside brackets, or where an expression "
                             "is expected")
    unit = _indent_unit(prefix + suffix)
    pending = bool(lines) and lines[-1][2] == ":" and lines[-1][1] in _COMPOUND
    k_ind = lines[-1][0] if lines else ""
    first = _first_code_line(suffix)
    j_ind = _line_indent(first) if first is not None else ""
    excluded = _declared_names(prefix + suffix)
    outer = [lv for lv in reversed(_indent_stack(lines)) if len(lv) < len(k_ind)]
    if pending:
        body = k_ind + unit
        if len(j_ind) > len(k_ind) and j_ind.startswith(k_ind) and not j_ind.startswith(body):
            body = j_ind                  # the file indents this body by another step
        candidates = [body, k_ind] + outer
    else:
        body = None
        candidates = [k_ind] + outer
    shapes: list[BlockShape] = []
    first_error = None
    for lv in candidates:
        if len(shapes) >= max(1, cfg.start_levels):
            break
        # after the pending body's first line, the middle may dedent: probe with it in place
        lead = body + "pass\n" if pending and lv != body else ""
        try:
            shape = _probe_block(prefix + lead, suffix, lambda m, lead=lead: doc(lead + m), lv,
                                 unit, _chain_len(lv, j_ind, unit), cfg,
                                 clause_first=lv != candidates[0])
        except SpecError as e:
            if shapes or (pending and lv == body):
                if not shapes:
                    raise
                break                     # levels are used in order: stop at the first refusal
            first_error = first_error or e
            continue
        shapes.append(shape)
    if not shapes:
        raise first_error
    return HoleContext(kind="block", shape=shapes[0], tuple_ok=False,
                       witness=_witness(shapes[0]), excluded_names=excluded,
                       shapes=tuple(shapes), pending=pending)


def _chain_len(ls: str, j_ind: str, unit: str) -> int:
    """How many open headers lead from ``ls`` to the suffix's indentation ``j_ind``."""
    if len(j_ind) <= len(ls):
        return 0
    n = (len(j_ind) - len(ls)) // len(unit)
    if j_ind != ls + unit * n:
        raise SpecError(f"the code after the hole is indented {j_ind!r}, which the hole's "
                        f"indentation {ls!r} cannot reach in steps of {unit!r}")
    return n


def _indent_stack(lines) -> list[str]:
    """Indentations of the blocks open after the logical lines ``lines`` (outermost first)."""
    stack = [""]
    for ind, _, _, _ in lines:
        while len(stack) > 1 and len(ind) < len(stack[-1]):
            stack.pop()
        if len(ind) > len(stack[-1]):
            stack.append(ind)
    return stack


def guess_witness(prefix: str) -> str:
    """A likely witness for a hole after ``prefix``, without probing (a starting point when
    several holes are analysed together): ``x`` inside a line, else a ``pass`` line at the
    indentation the hole would take."""
    if prefix and not prefix.endswith("\n"):
        return "x"
    lines, _ = _logical_lines(prefix)
    if not lines:
        return "pass\n"
    ind = lines[-1][0]
    if lines[-1][2] == ":" and lines[-1][1] in _COMPOUND:
        ind += _indent_unit(prefix)
    return ind + "pass\n"


def _witness(shape: BlockShape, kinds=None, body: str = "pass") -> str:
    """A shortest middle of the shape: ``pass`` (or the tail's if-statement), then one header
    per chain level (``kinds[i]`` or the first allowed kind, ``if`` preferred)."""
    if not shape.chain:
        if shape.tail:
            u = shape.unit
            if "if" in shape.tail:
                return f"{shape.indent}if x:\n{shape.indent}{u}{body}\n"
            return f"{shape.indent}for x in x:\n{shape.indent}{u}{body}\n"
        return f"{shape.indent}{body}\n"
    out = []
    for i, allowed in enumerate(shape.chain):
        ind = shape.indent + shape.unit * i
        k = (kinds[i] if kinds else None) or _pref(allowed)
        out.append(ind + {"if": "if x:", "for": "for x in x:", "while": "while x:",
                          "try": "try:", "elif": "if x:\n" + ind + shape.unit + "pass\n" + ind
                          + "elif x:", "else": "if x:\n" + ind + shape.unit + "pass\n" + ind
                          + "else:", "pelse": "else:", "pelif": "elif x:"}[k] + "\n")
    return "".join(out)


def _pref(kinds) -> str:
    for k in ("if", "for", "while", "else", "elif", "try", "pelse", "pelif"):
        if k in kinds:
            return k
    raise SpecError("no header kind fits the suffix")


def _suffix_needs(prefix: str, suffix: str, ls: str, unit: str, chain_len: int):
    """For each chain level: the clause the suffix continues it with (or None) and whether a
    break/continue of the suffix sits directly in it (not in a loop / def of the suffix)."""
    w = "".join(ls + unit * i + "if x:\n" for i in range(chain_len))
    start_row = (prefix + w).count("\n") + 1
    lines, _ = _logical_lines(prefix + w + suffix)
    s_lines = [ln for ln in lines if ln[3] >= start_row]
    levels = [ls + unit * i for i in range(chain_len)]
    clause = [None] * chain_len
    loopctl = [False] * chain_len
    open_ = [True] * chain_len            # level i's body still open (suffix not back at it)
    own: list[str] = []                   # indentations of the suffix's own loops / defs
    for ind, first, _, _ in s_lines:
        while own and len(ind) <= len(own[-1]):
            own.pop()
        for i in range(chain_len):
            if open_[i] and len(ind) <= len(levels[i]):
                open_[i] = False
                if ind == levels[i] and first in _CLAUSES:
                    clause[i] = first
        if first in ("break", "continue") and not own:
            inner = [i for i in range(chain_len) if open_[i]]
            if inner:
                loopctl[inner[-1]] = True
        if first in ("for", "while", "def", "class", "async"):
            own.append(ind)
    return clause, loopctl


def _first_clause(suffix: str) -> str | None:
    """The clause keyword (elif / else / except / finally) the suffix's first code line starts
    with, if any."""
    first = _first_code_line(suffix)
    m = re.match(r"[ \t]*(elif|else|except|finally)\b", first or "")
    return m.group(1) if m else None


def _probe_block(prefix, suffix, doc, ls, unit, chain_len, cfg: PythonSubset,
                 clause_first: bool = False) -> BlockShape:
    """The shape at ``ls``: chain header kinds from the suffix's clauses, each kind kept only if
    the file compiles with it (the other levels at their preferred kind: a loop where a
    break/continue of the suffix sits, else ``if``), then ``return`` / ``break`` permissions and
    the nesting limit."""
    chain: list[set] = []
    pref: list[str] = []
    tail = None
    if chain_len:
        clause, loopctl = _suffix_needs(prefix, suffix, ls, unit, chain_len)
        for i in range(chain_len):
            kinds = {None: {"if", "for", "while", "else", "elif"}, "elif": {"if", "elif"},
                     "else": {"if", "elif", "for", "while"}}.get(clause[i], {"try"})
            if not cfg.loops:
                kinds -= {"for", "while"}
            if not cfg.elif_:
                kinds -= {"elif"}
            if not cfg.else_:
                kinds -= {"else"}
            if 0 < i and not cfg.chain_statements and kinds - {"elif", "else"}:
                kinds -= {"elif", "else"}          # no if-statement before a bare header
            if i == 0 and clause_first:
                # the middle starts below the prefix's last block: its first line may continue
                # the prefix's statement there (kept only if the probes compile)
                kinds = kinds | ({"pelse", "pelif"} & ({"pelse"} if clause[0] != "elif" else set()
                                                      | {"pelif"}))
            chain.append(kinds)
            loops = kinds & {"for", "while"}
            pref.append(sorted(loops)[0] if loopctl[i] and loops else _pref(kinds) if kinds else "if")
    else:
        first_line = _first_code_line(suffix)
        if _first_clause(suffix) in ("elif", "else") and first_line is not None \
                and _line_indent(first_line) == ls:
            tail = frozenset({"if"})
    shape = BlockShape(indent=ls, unit=unit, chain=tuple(frozenset(k) for k in chain), tail=tail)
    if not compiles(doc(_witness(shape, pref))):
        raise SpecError(
            f"no statement fits at this hole (indentation {ls!r}): the file with `pass` there "
            "does not compile. Line-boundary holes must sit between statements of a valid file, "
            "or where an expression is expected inside a line")
    for i in range(len(chain)):
        for k in sorted(chain[i]):
            if not compiles(doc(_witness(shape, pref[:i] + [k] + pref[i + 1:]))):
                chain[i] = chain[i] - {k}
        if not chain[i]:
            raise SpecError(f"no header kind at indentation {ls + unit * i!r} lets the suffix "
                            "go on; the file around the hole may not be valid Python")
    shape = replace(shape, chain=tuple(frozenset(k) for k in chain))
    allow_ret = compiles(doc(_pre(shape, "return 0")))
    allow_loop = compiles(doc(_pre(shape, "break"))) and compiles(doc(_pre(shape, "continue")))
    shape = replace(shape, allow_return=allow_ret, allow_loop_control=allow_loop)
    # the deepest nesting the language allows must not hit Python's static block limit
    nest = max(cfg.max_block_depth, len(shape.chain))
    if nest > 0 and not compiles(doc(_pre(shape, None, nest=nest))):
        raise SpecError("the hole is nested too deeply for the middle's own blocks; lower "
                        "max_block_depth")
    return shape


def _pre(shape: BlockShape, stmt: str | None, nest: int = 0) -> str:
    """A middle putting ``stmt`` (or a nest of loops) on the hole's first level, before the
    chain/tail witness."""
    ind, u = shape.indent, shape.unit
    if stmt is not None:
        head = f"{ind}{stmt}\n"
    else:
        head = "".join(f"{ind}{u * i}for x in x:\n{ind}{u * (i + 1)}pass\n" if i == nest - 1
                       else f"{ind}{u * i}for x in x:\n" for i in range(nest))
    if shape.chain or shape.tail:
        return head + _witness(shape)
    return head


_EXPR_WITNESSES = ("x", "1", "'s'", "not x", "x or x", "x == x", "-x", "x.x", "x(x)", "x[x]",
                   "(x)", "[x]", "x is None", "x if x else x")


def _items_context(prefix, suffix, doc, cfg: PythonSubset) -> HoleContext | None:
    """A line-start hole inside an open bracket (a list, tuple, set, dict or call spread over
    lines): whole lines of ``item,``, if every probe compiles in place: no items, one and two
    items of every expression form, indented or not (a dict: ``key: value,`` lines)."""
    excluded = _declared_names(prefix + suffix)
    for dict_items in (True, False):
        if dict_items:
            probes = [f"{w}: x,\n" for w in _EXPR_WITNESSES] + \
                     [f"x: {w},\n" for w in _EXPR_WITNESSES] + ["x:x,\n", "  x: x,\n"]
        else:
            probes = [f"{w},\n" for w in _EXPR_WITNESSES] + ["  x,\n"]
        probes += ["", probes[0] + probes[1], probes[0][:-1] + "  # note\n"]
        if not cfg.conditional:
            probes = [p for p in probes if " if " not in p]
        if all(compiles(doc(p)) for p in probes):
            return HoleContext(kind="items", shape=None, tuple_ok=False, witness="",
                               excluded_names=excluded, dict_items=dict_items)
    return None


def _expr_context(prefix, suffix, doc, cfg: PythonSubset) -> HoleContext:
    """A hole inside a line: one expression, if the position expects one.

    Checked by probes with every form an expression of the language can take (``not x``,
    ``x or x``, literals, calls, subscripts...), each of which must compile *and* tokenize as
    tokens of its own at the hole (a hole inside a string or a comment absorbs any probe)."""
    line = prefix[prefix.rfind("\n") + 1:]
    if not line.strip():
        raise SpecError("the hole is inside the indentation of a line; put it at the line start")
    rest = suffix.split("\n", 1)[0]
    bad_before = line[-1:] and (line[-1].isalnum() or line[-1] in "_.'\"")
    bad_after = rest[:1] and (rest[0].isalnum() or rest[0] in "_.'\"([")
    wit = [w for w in _EXPR_WITNESSES if cfg.conditional or " if " not in w]
    if bad_before or bad_after or not all(compiles(doc(w)) for w in wit) \
            or not all(_own_tokens(doc, prefix, w) for w in ("x", "'s'", "(x)")):
        raise SpecError(
            "only line-boundary holes and holes where a complete expression is expected (after "
            "'=', 'return ', '(', ', ', 'if ' ...) are supported; this position is inside a "
            f"token, a string or a comment, or expects something else: "
            f"{line[-30:]!r}<hole>{rest[:30]!r}")
    # an unparenthesised tuple of any length (`assert a, b` takes two expressions, not three)
    tuple_ok = all(compiles(doc(w)) for w in ("x, x", "x, 1", "(x), not x", "x, x, x"))
    return HoleContext(kind="expr", shape=None, tuple_ok=tuple_ok, witness="x",
                       excluded_names=_declared_names(prefix + suffix))


def _own_tokens(doc, prefix: str, witness: str) -> bool:
    """Whether ``witness`` put in the hole is read as whole tokens starting and ending there."""
    text = doc(witness)
    start = text.find(prefix + witness) if not text.startswith(prefix) else 0
    if start != 0:
        return False
    row = prefix.count("\n") + 1
    col0 = len(prefix) - (prefix.rfind("\n") + 1)
    col1 = col0 + len(witness)
    starts, ends = set(), set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.start[0] == row:
                starts.add(tok.start[1])
            if tok.end[0] == row:
                ends.add(tok.end[1])
            if tok.start[0] > row:
                break
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return False
    return col0 in starts and col1 in ends


# --- sampling (tests) ----------------------------------------------------------------------------

def sample_text(dfa: ByteDFA, rng: np.random.Generator, *, max_bytes: int = 400,
                stop: float = 0.3) -> str:
    """A random text of ``dfa``'s language (random live byte each step; at an accepting state,
    stop with probability ``stop``; steer to the nearest accepting state near ``max_bytes``).
    Used to test soundness on texts the language allows, whatever a tokenizer prefers."""
    dist = _distances(dfa)
    q, out = dfa.initial, bytearray()
    while True:
        if dfa.accepting[q] and (rng.random() < stop or len(out) + 1 >= max_bytes):
            break
        row = dfa.table[q]
        ok = np.nonzero((row >= 0) & (dist[np.maximum(row, 0)] >= 0))[0]
        if len(out) + dist[q] >= max_bytes:          # head for acceptance
            ok = ok[dist[row[ok]] == dist[q] - 1]
        b = int(rng.choice(ok))
        out.append(b)
        q = int(row[b])
    return out.decode("utf-8")


def _distances(dfa: ByteDFA) -> np.ndarray:
    """Fewest bytes from each state to an accepting state (-1: none)."""
    cache = getattr(dfa, "_dist", None)
    if cache is not None:
        return cache
    n = dfa.num_states
    dist = np.where(dfa.accepting, 0, -1).astype(np.int64)
    src, byte = np.nonzero(dfa.table >= 0)
    dst = dfa.table[src, byte]
    d = 0
    while True:
        frontier = dist == d
        new = np.unique(src[frontier[dst]])
        new = new[dist[new] < 0]
        if not len(new):
            break
        d += 1
        dist[new] = d
    object.__setattr__(dfa, "_dist", dist)
    return dist
