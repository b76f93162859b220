"""Spec stage, grammars: the two backends of one construction: a regex string, or an NFA turned
into a byte automaton directly (which stays small where the regex would blow up)."""

from __future__ import annotations

import time

import numpy as np

from ..automata.byte_dfa import regex_to_byte_dfa
from ..automata.dfa_ops import MARK, byte_dfa_of, compile_expr
from ..errors import CompileLimitError
from .grammar_terms import GrammarError, _group

# --- backends: the same construction as a regex string or as an automaton -------------------------

MAX_REGEX_OUTPUT = 2_000_000
""":func:`grammar_regex` refuses to write a regex longer than this (CompileLimitError)."""


class _Backend:
    name = ""


class _RegexBackend(_Backend):
    name = "rx"

    def __init__(self, max_chars: int = MAX_REGEX_OUTPUT):
        self.max_chars = max_chars

    def _check(self, rx: str) -> str:
        if len(rx) > self.max_chars:
            raise CompileLimitError(
                f"the grammar's regex passes {self.max_chars:,} characters at this depth (a "
                "regex must write out every use of a rule again); lower max_depth, or use "
                "grammar_dfa, which shares them", limit="regex_chars", value=len(rx))
        return rx

    def alt(self, parts):
        parts = list(dict.fromkeys(parts))
        return parts[0] if len(parts) == 1 else self._check("(?:" + "|".join(parts) + ")")

    def seq(self, parts):
        return self._check("".join(parts))

    def rep(self, body, lo, hi):
        if body == "":
            return ""
        op = {(0, 1): "?", (0, None): "*", (1, None): "+"}.get((lo, hi))
        if op is None:
            op = "{%d}" % lo if lo == hi else "{%d,%s}" % (lo, "" if hi is None else hi)
        return _group(body) + op

    def ref(self, out):
        return out

    def term(self, rx, sep, min_sep):
        if sep is None:
            return rx
        return rx + _group(sep) + ("+" if min_sep else "*")

    def finish_rule(self, out):
        return out


class _DFABackend(_Backend):
    name = "dfa"

    def __init__(self, max_states: int, timeout_s: float, max_edges: int | None = None):
        self.max_states = max_states
        self.max_edges = max_edges
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self._terms: dict = {}

    def alt(self, parts):
        return parts[0] if len(parts) == 1 else ("alt", parts)

    def seq(self, parts):
        return parts[0] if len(parts) == 1 else ("seq", parts)

    def rep(self, body, lo, hi):
        return ("rep", body, lo, hi)

    def ref(self, out):
        return ("dfa", out)

    def term(self, rx, sep, min_sep):
        key = (rx, sep)
        hit = self._terms.get(key)
        if hit is None:
            t = ("dfa", regex_to_byte_dfa(rx))
            if sep is not None:              # the terminal, a boundary mark, its ignore matches
                t = ("seq", [t, ("dfa", byte_dfa_of(MARK)),
                             ("rep", ("dfa", regex_to_byte_dfa(sep)), 0, None)])
            hit = self._terms[key] = ("dfa", compile_expr(t))
        return hit

    def finish_rule(self, expr):

        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CompileLimitError(
                f"building the grammar's automaton took longer than {self.timeout_s:g} s; lower "
                "max_depth or raise CompileLimits.regex_timeout_s", limit="regex_timeout_s",
                value=self.timeout_s)
        dfa = compile_expr(expr, max_states=self.max_states, timeout_s=left)
        if dfa is None:
            raise GrammarError("internal: a rule's automaton is empty although its flags are not")
        if self.max_edges is not None and _edges(dfa) > self.max_edges:
            raise CompileLimitError(f"a rule's automaton passes {self.max_edges:,} transitions",
                                    limit="max_edges", value=self.max_edges)
        return dfa


def _edges(dfa) -> int:
    return int(np.count_nonzero(dfa.table >= 0))
