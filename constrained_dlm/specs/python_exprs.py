"""Spec stage, Python holes: the expression part of the NFA builder (names, operators, calls,
subscripts, displays, assignment targets): a mixin of :class:`.python_builder._Builder`."""

from __future__ import annotations

from .python_subset import _ID_CONT, _ID_START, _NUMBER, _STRING, _SYM_OPS



class _Exprs:
    """Expression fragments, wired between given NFA states (see :class:`~.python_builder._Builder`)."""

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
