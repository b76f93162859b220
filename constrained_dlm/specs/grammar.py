"""Spec stage: a context-free grammar (lark syntax) becomes one hole, by a nesting bound.

    g = load_grammar("json")                    # bundled: json, arithmetic, sql, csv, python_expr
    grammar_dfa(g, max_depth=3)                 # the language as a minimal byte automaton
    g.parse(text)                               # lark's own Earley parser: independent validation

The hole's language is the grammar's sentences whose derivations nest at most ``d`` recursive
references: a subset, so every text parses, and a regular one, so the decoder's masks are exact
in any filling order. Built as automata per (rule, depth), not as a regex. Design, word
boundaries, the validation parser and caveats: ``docs/design/grammar_automaton.md``; what is
accepted and refused: ``docs/grammar.md``.
"""

from __future__ import annotations

import hashlib
import re
import time

import lark

from ..automata.automaton import CompileLimits, EmptyLanguage, token_automaton
from ..automata.dfa_ops import separate_words
from ..errors import BudgetError, CompileLimitError, ValidationFailure
from .grammar_backends import _DFABackend, _edges, _RegexBackend
from .grammar_load import _rules_too_deep, load_grammar
from .grammar_model import Grammar, _check_depth
from .grammar_terms import _N, BUNDLED, DEPTH_CAP, GrammarError, grammars_dir
from .pieces import HoleSpec

__all__ = ["load_grammar", "Grammar", "GrammarError", "BUNDLED", "DEPTH_CAP", "grammars_dir",
           "grammar_regex", "grammar_dfa", "grammar_hole", "grammar_validator", "default_depth",
           "compile_depths", "identifier_regex"]


# --- the approximation ----------------------------------------------------------------------------


def grammar_regex(grammar: "Grammar | str", *, max_depth: int) -> str:
    """A regex for the grammar's sentences of nesting depth <= ``max_depth``.

    Every text it fullmatches parses with :meth:`Grammar.parse`. Its language is that of
    :func:`grammar_dfa`, except that it may ask for a separator where words might meet and do not
    (see the module docstring: ``x or y`` is accepted, but python_expr's regex also wants a space
    after a final name). Raises :class:`BudgetError` when
    no sentence is that shallow (``Grammar.min_depth`` says how deep the shallowest one is), and
    ``CompileLimitError`` when the regex would pass ``MAX_REGEX_OUTPUT`` characters: a regex
    writes each use of a rule out again, so it grows like (uses per level) ** depth, and a
    precedence-climbing grammar (python_expr) is megabytes at depth 1. Holes are therefore built
    from :func:`grammar_dfa` (the same language, sub-automata shared); this regex is for
    inspection, tests and small grammars.
    """
    g = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    return g.regex(max_depth)


def grammar_dfa(grammar: "Grammar | str", *, max_depth: int, max_states: int = 200_000,
                timeout_s: float = 10.0, max_edges: int | None = None):
    """The minimal byte automaton of the grammar's sentences of nesting depth <= ``max_depth``
    (with word boundaries separated exactly), built rule by rule.

    Each (rule, depth) automaton is built once, minimised and embedded where it is used, so the
    cost follows the size of the minimal automata, not of the written-out regex. Memoised on the
    grammar: raising the depth reuses everything below it. This is what grammar holes use.
    """
    g = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    k = _check_depth(g, max_depth)
    key = ("dfa_final", k)
    hit = g._memo.get(key)
    if hit is None:
        raw = g._rule_out(_DFABackend(max_states, timeout_s, max_edges), g.start, k, _N)
        hit = g._memo[key] = separate_words(raw, max_states=max_states) if g._ignore_names else raw
    if hit.num_states > max_states:               # built earlier under looser limits
        raise CompileLimitError(
            f"grammar {g.name} at depth {k} needs {hit.num_states:,} automaton states (> "
            f"{max_states:,}); lower max_depth or raise CompileLimits.max_states",
            limit="max_states", value=max_states)
    if max_edges is not None and _edges(hit) > max_edges:
        raise CompileLimitError(f"grammar {g.name} at depth {k} passes {max_edges:,} transitions",
                                limit="max_edges", value=max_edges)
    return hit


DEFAULT_MAX_STATES = 20_000
"""The default depth stops growing before the hole's byte automaton would pass this many states,"""
DEFAULT_LIFT_WORK = 16_000_000
"""... or states x vocabulary size (the cost of lifting it to tokens: about a second per 5M on
one core; 8,000 states at a 2k-token vocabulary, 500 at 32k),"""
DEFAULT_MAX_EDGES = 150_000
"""... or this many byte transitions (the decoder's per-step work follows the automaton's
transitions: on one CPU core json at depth 6, 128k byte transitions, costs about 0.1 s per step
for a 32-token hole; python_expr at depth 1, 450k, costs 1.5 s),"""
DEFAULT_DEPTH_TIME_S = 5.0
"""... or before building the next depth would take longer than this."""


def default_depth(grammar: "Grammar", max_tokens: int, *, vocab_size: int | None = None,
                  max_states: int | None = None, max_edges: int = DEFAULT_MAX_EDGES,
                  time_s: float = DEFAULT_DEPTH_TIME_S) -> int:
    """The nesting bound used when none is given.

    The deepest ``d <= min(max_tokens // 2, DEPTH_CAP)`` whose automaton stays under
    ``max_states`` states (default: ``DEFAULT_MAX_STATES``, and ``DEFAULT_LIFT_WORK /
    vocab_size``) and ``max_edges`` byte transitions, and builds within ``time_s``; never below
    ``grammar.min_depth``. A nesting level costs at least one token (an opening bracket, an
    operator) and usually two, so half the budget is the deepest useful bound. Depths are built
    upward (each reuses the one below); the next one is not tried when the growth so far predicts
    it will not fit.

    Chosen on the 2k-token test vocabulary with 32 tokens: arithmetic 6 (43 states), json 6
    (5,263 states, 128k transitions), csv exact (21), sql 2 (4,272, 93k), python_expr 0 (286,
    17k; depth 1 has 7,292 states and 450k transitions: pass ``max_depth=1``, best on a GPU).
    """
    if not grammar.recursive:
        return 0
    if max_states is None:
        max_states = DEFAULT_MAX_STATES
        if vocab_size:
            max_states = min(max_states, max(1, DEFAULT_LIFT_WORK // vocab_size))
    lo = grammar.min_depth
    hi = max(lo, min(max_tokens // 2, DEPTH_CAP))
    key = ("default_depth", hi, max_states, max_edges, time_s)
    if key in grammar._memo:
        return grammar._memo[key]
    d, prev, took = lo, None, 0.0
    try:
        cur = grammar_dfa(grammar, max_depth=d, max_states=4 * max_states, timeout_s=time_s)
    except CompileLimitError:
        cur = None
    while cur is not None and d < hi:
        n, e = cur.num_states, _edges(cur)
        growth = max(n / prev[0], e / prev[1], 1.0) if prev else 2.0   # a guess at first
        if n * growth > max_states or e * growth > max_edges or took * growth > time_s:
            break                                      # the next depth would not fit: skip it
        t0 = time.monotonic()
        try:
            nxt = grammar_dfa(grammar, max_depth=d + 1, max_states=4 * max_states,
                              timeout_s=time_s, max_edges=max_edges)
        except CompileLimitError:
            break
        took = time.monotonic() - t0
        if nxt.num_states > max_states or _edges(nxt) > max_edges:
            break
        prev, cur, d = (n, e), nxt, d + 1
    grammar._memo[key] = d
    return d


def compile_depths(grammar: "Grammar", max_tokens: int, max_depth: int | None,
                   vocab_size: int | None = None) -> list[int]:
    """Depths ``Template.from_grammar`` tries, deepest first (just ``max_depth`` when given)."""
    if max_depth is not None:
        return [max_depth]
    if not grammar.recursive:
        return [0]
    d = default_depth(grammar, max_tokens, vocab_size=vocab_size)
    return list(range(d, grammar.min_depth - 1, -1))


HOLE_REGEX_CHARS = 20_000
"""A grammar hole's ``HoleSpec.regex`` is the exact regex up to this length, else ``(?s:.*)``."""


def grammar_hole(grammar: "Grammar | str", vocab, *, max_tokens: int,
                 max_depth: int | None = None, limits=None):
    """``(grammar, hole_spec, token automaton, depth)`` for a hole holding one sentence.

    Depths are tried deepest first (:func:`compile_depths`); one that passes a compile limit
    (states, time, lifting work) gives way to the next shallower one. With ``max_depth`` given,
    only that depth is tried. The automaton is built from :func:`grammar_dfa`, never from the
    hole spec's regex: that is the exact regex when shorter than ``HOLE_REGEX_CHARS`` and otherwise the
    stand-in ``(?s:.*)`` (what splits a text into holes in ``Template.render``, which then checks
    the hole's automaton anyway).
    """

    g = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    limits = limits or CompileLimits()
    if max_tokens < 1:
        raise BudgetError(f"grammar {g.name}: max_tokens must be at least 1", needed=1,
                          budget=max_tokens)
    tag = hashlib.sha1(f"{g.name}\0{g.import_dir}\0{g.start}\0{g.text}".encode()).hexdigest()[:16]
    tried, last = [], None
    try:
        depths = compile_depths(g, max_tokens, max_depth, getattr(vocab, "size", None))
    except RecursionError:
        raise _rules_too_deep(g.name) from None
    for d in depths:
        tried.append(d)
        try:
            auto = token_automaton(
                f"(?#grammar {g.name} {tag} depth {d})", vocab, None, limits,
                dfa=lambda d=d: grammar_dfa(g, max_depth=d, max_states=limits.max_states,
                                            timeout_s=limits.regex_timeout_s))
        except EmptyLanguage:
            raise
        except CompileLimitError as e:
            last = e
            continue
        except RecursionError:        # unrolled this deep, the rules outgrow Python's stack
            last = CompileLimitError(f"depth {d} nests deeper than Python's recursion limit",
                                     limit="nesting", value=d)
            continue
        try:
            rx = g._rule_out(_RegexBackend(HOLE_REGEX_CHARS), g.start, d if g.recursive else 0, _N)
        except CompileLimitError:
            rx = ""
        if not rx or len(rx) > HOLE_REGEX_CHARS:
            rx = "(?s:.*)"
        hole_spec = HoleSpec(regex=rx, kind="regex", max_tokens=max_tokens, name=g.name)
        return g, hole_spec, auto, d
    raise CompileLimitError(
        f"grammar {g.name}: no nesting depth in {tried} compiles within the limits ({last}); "
        "pass a smaller max_depth or raise CompileLimits", limit=getattr(last, "limit", "depth"),
        value=tried)


def grammar_validator(grammar: "Grammar"):
    """Validate output with the grammar's own lark parser; the value is the text."""

    def validate(text: str) -> str:
        try:
            grammar.parse(text)
        except lark.exceptions.LarkError as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValidationFailure(f"decoded text does not parse with grammar {grammar.name} "
                                    f"({msg}): {text[:200]!r}") from None
        return text

    return validate


# --- helpers for writing grammars -----------------------------------------------------------------

def identifier_regex(exclude, *, first: str = "A-Za-z_", rest: str = "A-Za-z0-9_",
                     ignore_case: bool = False) -> str:
    """A regex for identifiers ``[first][rest]*`` other than the words in ``exclude`` (keywords).

    No lookaround: a trie of the words, each node offering "any other character, then anything",
    a child, or the end (last, so Python's leftmost-first match takes the longest name).
    With ``ignore_case`` the words are excluded in any case (write ``first``/``rest`` in lower
    case and add the ``i`` flag to the terminal).
    """
    def chars(spec: str) -> set[str]:
        out, i = set(), 0
        while i < len(spec):
            if i + 2 < len(spec) and spec[i + 1] == "-":
                out |= {chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1)}
                i += 3
            else:
                out.add(spec[i])
                i += 1
        return out

    def cls(cs: set[str]) -> str:
        codes = sorted(ord(c) for c in cs)
        parts, i = [], 0
        while i < len(codes):
            j = i
            while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
                j += 1
            a, b = chr(codes[i]), chr(codes[j])
            parts.append(a if i == j else a + b if j == i + 1 else f"{a}-{b}")
            i = j + 1
        return "[" + "".join(parts) + "]"

    words = {w.lower() if ignore_case else w for w in exclude}
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True
    first_cs, rest_cs = chars(first), chars(rest)
    rest_cls = cls(rest_cs)

    def node_rx(node: dict, allowed: set[str], root: bool) -> str:
        kids = sorted(c for c in node if c)
        alts = []
        other = allowed - set(kids)
        if ignore_case:
            other -= {c.upper() for c in kids} | {c.lower() for c in kids}
        if other:
            alts.append(cls(other) + rest_cls + "*")
        for c in kids:
            if c in allowed:
                alts.append(re.escape(c) + node_rx(node[c], rest_cs, False))
        if not root and "" not in node:
            alts.append("")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return node_rx(trie, first_cs, True)
