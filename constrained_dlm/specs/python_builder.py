"""Spec stage, Python holes: the NFA builder: primitives (literals, character sets, end of line)
and statements, suites and block levels; expressions come from :class:`.python_exprs._Exprs`."""

from __future__ import annotations

import time

from ..automata import byte_dfa as _bd
from .python_subset import (
    _AUG_OPS,
    _COMMENT,
    RESERVED_NAMES,
    BlockShape,
    PythonSubset,
    _ranges,
    _trie,
)

try:  # Python 3.11+
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_parse as _sre_parse
from .python_exprs import _Exprs


class _Builder(_Exprs):
    """Wires an NFA over bytes (``byte_dfa._NFA``) for one language; fragments are built between
    given states. A fragment never adds edges *out of* its exit state and never loops back to its
    entry state (both belong to the caller), so shared states cannot leak paths."""

    def __init__(self, cfg: PythonSubset, timeout_s: float, max_states: int):
        self.cfg = cfg
        self.nfa = _bd._NFA(time.monotonic() + timeout_s, max_states * 8)
        self.excluded = RESERVED_NAMES | frozenset(cfg.excluded_names)
        self._trie = _trie(self.excluded)
        self._memo: dict = {}

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

    def simple_line(self, ls: int, l1: int, loop_ok: bool, ret_ok: bool, d: int,
                    inline: bool = True) -> None:
        """One simple statement after the indentation (ls), through the newline (to l1); with
        ``inline_bodies``, also a one-line ``if`` / ``while`` / ``for`` whose body is one."""
        cfg = self.cfg
        if inline and cfg.inline_bodies:
            hd = min(d, cfg.header_depth)
            for kw, body_loop in (("if", loop_ok), ("while", loop_ok or cfg.loop_break)):
                e, c, b = self.st(), self.st(), self.st()
                self.lit(ls, kw + " ", e)
                self.expr(e, c, hd)
                self.lit(c, ": ", b)
                self.simple_line(b, l1, body_loop, ret_ok, d, inline=False)
            f, f2, e, c, b = (self.st() for _ in range(5))
            self.lit(ls, "for ", f)
            self.targets(f, f2, simple=True)
            self.lit(f2, " in ", e)
            self.expr(e, c, hd)
            self.lit(c, ": ", b)
            self.simple_line(b, l1, loop_ok or cfg.loop_break, ret_ok, d, inline=False)
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
        self._cond(ls, "if", if_body, hd)
        if cfg.elif_:
            e = self.st()
            self.lit(aif, ind, e)
            self._cond(e, "elif", if_body, hd)
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
            self._cond(ls, "while", loop_body, hd)
            f, f2 = self.st(), self.st()
            self.lit(ls, "for ", f)
            self.targets(f, f2, simple=True)
            self.lit(f2, " in ", self._header_expr(loop_body, hd))
        if cfg.defs:
            body = self.suite(inner, False, depth_left - 1, l1, nonempty=True, ret_ok=True)
            self.def_header(ls, body, hd)
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

    def _cond(self, at: int, keyword: str, body: int, d: int) -> None:
        """``keyword EXPR:`` from ``at`` into ``body``; also ``keyword(EXPR):`` when the subset
        takes parenthesised headers with no space."""
        self.lit(at, keyword + " ", self._header_expr(body, d))
        if self.cfg.paren_headers:
            key = ("phdr", body, d)
            if key not in self._memo:
                e, c, c2 = self.st(), self.st(), self.st()
                self.expr(e, c, max(d - 1, 0))
                self.lit(c, "):", c2)
                self.eol(c2, body)
                self._memo[key] = e
            self.lit(at, keyword + "(", self._memo[key])

    def def_header(self, at: int, body: int, d: int) -> None:
        """``def NAME(PARAM):`` from ``at`` into ``body``, at most one parameter (with an
        optional annotation and default) and an optional return annotation."""
        n, o, p, a, q, r, c, c2 = (self.st() for _ in range(8))
        self.lit(at, "def ", n)
        self.name(n, o)
        self.lit(o, "(", p)
        self.eps(p, q)
        pn = self.st()
        self.rx(p, r"\*{0,2}", pn)
        self.name(pn, a)
        self.eps(a, q)
        ann, dflt = self.st(), self.st()
        self.lit(a, ": ", ann)
        self.expr(ann, q, d)
        qd = self.st()
        self.eps(q, qd)
        self.rx(q, " ?= ?", dflt)
        self.expr(dflt, qd, d)
        self.lit(qd, ")", r)
        self.eps(r, c)
        ret = self.st()
        self.lit(r, " -> ", ret)
        self.expr(ret, c, d)
        self.lit(c, ":", c2)
        self.eol(c2, body)

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
            self._cond(h, "if", nxt, hd)
        if "while" in kinds:
            self._cond(h, "while", nxt, hd)
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
            e = self.st()
            self.lit(aif, ind, e)
            self._cond(e, "elif", nxt, hd)
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
        self.lit(t, ind, h)
        self._cond(h, "if", body, self.cfg.header_depth)
        if self.cfg.elif_:
            e = self.st()
            self.lit(aif, ind, e)
            self._cond(e, "elif", body, self.cfg.header_depth)
