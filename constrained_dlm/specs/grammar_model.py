"""Spec stage, grammars: :class:`Grammar`: a loaded grammar, lark's parser for validation and its
EBNF trees for the regular approximation (built through a backend, nesting bounded by depth)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import lark
from lark import Tree
from lark.grammar import NonTerminal, Terminal
from lark.lexer import PatternRE
from lark.load_grammar import _literal_to_pattern

from ..errors import BudgetError
from .grammar_backends import _Backend, _RegexBackend
from .grammar_terms import (
    _N,
    _W,
    GrammarError,
    _Flags,
    _group,
    _locate,
    _repeat_bounds,
    _seq_flags,
    _single_char_loop,
    _sym_name,
    _terminal_info,
)


@dataclass(frozen=True, eq=False)
class Grammar:
    """A loaded grammar: lark's parser for validation, EBNF trees for the regex approximation."""

    text: str
    start: str
    name: str
    import_dir: str | None
    _rules: dict
    _terms: dict
    _ignore_names: tuple
    _parser: Any
    _memo: dict = field(default_factory=dict, repr=False)

    # validation

    def parse(self, text: str):
        """lark's parse tree of ``text`` (Earley, ``dynamic_complete`` lexer); raises lark's
        ``UnexpectedInput`` when ``text`` is not a sentence of the grammar."""
        return self._parser.parse(text)

    def accepts(self, text: str) -> bool:
        try:
            self._parser.parse(text)
        except lark.exceptions.LarkError:
            return False
        return True

    # structure

    @functools.cached_property
    def _back_edges(self) -> frozenset:
        """Rule references that close a cycle in a depth-first walk from the start rule."""
        succ = {r: sorted({t.children[0].name for t in tree.iter_subtrees()
                           if t.data == "value" and isinstance(t.children[0], NonTerminal)})
                for r, tree in self._rules.items()}
        back, state = set(), {}
        stack = [(self.start, iter(succ[self.start]))]
        state[self.start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            if nxt not in succ:
                continue
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
        return frozenset(back)

    @property
    def recursive(self) -> bool:
        """Whether the nesting bound matters (some reference spends depth)."""
        return bool(self._back_edges)

    @functools.cached_property
    def min_depth(self) -> int:
        """The smallest nesting bound whose approximation has a sentence."""
        if not self.recursive:
            if self._rule_flags(self.start, 0) is None:
                raise GrammarError(f"the grammar derives no sentence from rule {self.start!r}")
            return 0
        for k in range(len(self._rules) + 2):
            if self._rule_flags(self.start, k) is not None:
                return k
        raise GrammarError(f"rule {self.start!r} derives no finite sentence: every alternative "
                           "recurses forever", hint="add a non-recursive alternative")

    def regex(self, max_depth: int) -> str:
        """See :func:`~.grammar.grammar_regex`."""
        return self._rule_out(_RegexBackend(), self.start, _check_depth(self, max_depth), _N)

    # terminals

    def _terminal(self, name: str, pattern) -> tuple[str, _Flags] | None:
        key = ("term", name, pattern.to_regexp())
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = _terminal_info(name, pattern)
        return hit

    @functools.cached_property
    def _sep(self) -> str:
        """One ignore match (empty when the grammar ignores nothing). An ignore terminal that is
        one character repeated (``/[ \\t]+/``) contributes that character only: the separator is
        repeated anyway, and ``(?:[ \\t]+)*`` would make a backtracking matcher explode."""
        if not self._ignore_names:
            return ""
        parts = []
        for n in self._ignore_names:
            rx, _ = self._terminal(n, self._terms[n])
            parts.append(_single_char_loop(rx) or rx)
        parts = list(dict.fromkeys(parts))
        return _group("|".join(parts)) if len(parts) > 1 else parts[0]

    # flags and regexes of trees, memoised per (rule, depth[, follow])

    def _rule_flags(self, rule: str, k: int):
        key = ("flags", rule, k)
        if key not in self._memo:
            self._memo[key] = None                # guards cycles of forward edges (none by build)
            self._memo[key] = self._flags(self._rules[rule], rule, k)
        return self._memo[key]

    def _ref_depth(self, src: str, dst: str, k: int) -> int | None:
        if (src, dst) in self._back_edges:
            return k - 1 if k >= 1 else None
        return k

    def _flags(self, node, rule: str, k: int) -> _Flags | None:
        d = node.data if isinstance(node, Tree) else None
        if d == "expansions":
            fs = [f for f in (self._flags(c, rule, k) for c in node.children) if f is not None]
            if not fs:
                return None
            return _Flags(any(f.nullable for f in fs), any(f.sw for f in fs), any(f.ew for f in fs))
        if d == "alias":
            return self._flags(node.children[0], rule, k)
        if d == "expansion":
            fs = []
            for c in node.children:
                f = self._flags(c, rule, k)
                if f is None:
                    return None
                fs.append(f)
            return _seq_flags(fs)
        if d == "maybe":
            f = self._flags(node.children[0], rule, k)
            return _Flags(True, False, False) if f is None else _Flags(True, f.sw, f.ew)
        if d == "expr":
            f = self._flags(node.children[0], rule, k)
            lo, _hi = _repeat_bounds(node)
            if f is None:
                return None if lo > 0 else _Flags(True, False, False)
            return _Flags(f.nullable or lo == 0, f.sw, f.ew)
        if d == "value":
            (sym,) = node.children
            if isinstance(sym, NonTerminal):
                if sym.name not in self._rules:
                    raise GrammarError(f"rule {sym.name!r} is not defined")
                kk = self._ref_depth(rule, sym.name, k)
                return None if kk is None else self._rule_flags(sym.name, kk)
            pat = self._pattern(sym)
            info = self._terminal(_sym_name(sym), pat)
            return None if info is None else info[1]
        raise GrammarError(f"unsupported grammar construct {d or type(node).__name__!r} in rule "
                           f"{rule!r}")

    def _rule_out(self, be: "_Backend", rule: str, k: int, follow: str):
        if be.name == "dfa" or follow == _W and not self._rule_flags(rule, k).ew:
            follow = _N                    # nothing in it ends with a word character: no matter
        key = (be.name, rule, k, follow)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = be.finish_rule(self._build(be, self._rules[rule], rule, k,
                                                               follow))
        return hit

    def _build(self, be: "_Backend", node, rule: str, k: int, follow: str):
        """``node``'s texts, each terminal followed by its ignore matches, in the backend's form
        (a regex string, or an automaton expression). Callers only ask for nodes whose flags are
        not None."""
        d = node.data
        if d == "expansions":
            alts = [self._build(be, c, rule, k, follow) for c in node.children
                    if self._flags(c, rule, k) is not None]
            return be.alt(alts)
        if d == "alias":
            return self._build(be, node.children[0], rule, k, follow)
        if d == "expansion":
            flags = [self._flags(c, rule, k) for c in node.children]
            parts, f = [], follow
            for c, fl in zip(reversed(node.children), reversed(flags)):
                parts.append(self._build(be, c, rule, k, f))
                f = _W if fl.sw or (fl.nullable and f == _W) else _N
            return be.seq(parts[::-1])
        if d == "maybe":
            inner = node.children[0]
            if self._flags(inner, rule, k) is None:
                return be.seq([])
            return be.rep(self._build(be, inner, rule, k, follow), 0, 1)
        if d == "expr":
            inner = node.children[0]
            fl = self._flags(inner, rule, k)
            lo, hi = _repeat_bounds(node)
            if fl is None:
                return be.seq([])
            if hi == 1:
                body = self._build(be, inner, rule, k, follow)
            else:
                body = self._build(be, inner, rule, k, _W if fl.sw or follow == _W else _N)
            return body if (lo, hi) == (1, 1) else be.rep(body, lo, hi)
        if d == "value":
            (sym,) = node.children
            if isinstance(sym, NonTerminal):
                kk = self._ref_depth(rule, sym.name, k)
                return be.ref(self._rule_out(be, sym.name, kk, follow))
            rx, fl = self._terminal(_sym_name(sym), self._pattern(sym))
            if not self._ignore_names:
                return be.term(rx, None, 0)
            return be.term(rx, self._sep, 1 if fl.ew and follow == _W else 0)
        raise GrammarError(f"unsupported grammar construct {d!r} in rule {rule!r}")

    def _pattern(self, sym):
        if isinstance(sym, Terminal):
            pat = self._terms.get(sym.name)
            if pat is None:
                raise GrammarError(f"terminal {sym.name!r} has no pattern (%declare is not "
                                   "supported)", **_locate(self.text, sym.name))
            return pat
        if isinstance(sym, Tree) and sym.data == "literal":
            return _literal_to_pattern(sym.children[0])
        if isinstance(sym, Tree) and sym.data == "range":
            a, b = (t.value[1:-1] for t in sym.children)
            return PatternRE(f"[{a}-{b}]")
        if isinstance(sym, Tree) and sym.data == "template_usage":
            raise GrammarError("rule templates are not supported; write their uses out")
        raise GrammarError(f"unsupported grammar symbol {sym!r}")


def _check_depth(g: "Grammar", max_depth: int) -> int:
    if max_depth < 0:
        raise ValueError("max_depth must be >= 0")
    need = g.min_depth
    if g.recursive and max_depth < need:
        raise BudgetError(f"grammar {g.name}: no sentence of rule {g.start!r} nests at most "
                          f"{max_depth} deep; the shallowest needs depth {need}; raise max_depth",
                          needed=need, budget=max_depth)
    return max_depth if g.recursive else 0
