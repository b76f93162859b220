"""Compile stage: a byte DFA lifted to tokens and compressed into token classes.

Every token either dies or moves the automaton from each state to exactly one next state. Tokens
that do the same thing in *every* state form a class; per-step work then scales with classes
(tens to hundreds), not with the vocabulary (tens of thousands). A character counter (for
``minLength``/``maxLength``) is a product with a small counter, built here rather than by counted
repetition in the regex, which explodes.

Usage::

    auto = token_automaton(r"-?(0|[1-9][0-9]*)", vocab)
    auto.trans[s, auto.token_class[t]]   # next state after token t in state s (-1: dead)

Performance: lifting walks the vocabulary's byte trie once for all states, merging prefixes the
automaton cannot tell apart (see :func:`_lift`): a few ms for a JSON primitive at 128k tokens.
Results are cached per (vocabulary, regex, length bounds), so primitive holes compile once per
vocabulary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import CompileLimitError
from . import byte_dfa, disk_cache, native
from .byte_dfa import DEAD, ByteDFA, _unique_rows, regex_to_byte_dfa
from .clock import check_clock, compile_clock
from .components import _PARTS, _SEEN, lift_reusing_components
from .dfa_ops import coaccessible, distinct
from .lift import _TAIL_LIFTS, _TAIL_SEEN, _lift, _vocab_trie, lift_reusing_tail, warm_vocabulary  # noqa: F401
from .lru import LRU


@dataclass(frozen=True)
class CharLength:
    """Character-length bounds on a JSON string hole, enforced by a counter in the automaton.

    Counted repetition (``x{0,200}``) makes regex automata explode; a counter beside a small
    automaton does not. Two modes:

    - ``"json_string"``: the hole spec regex is ``lead + '"' + JSON_CHAR + '*"'`` (see
      :func:`string_hole_regex`); counts decoded characters (an escape counts as one).
    - ``"codepoints"``: the hole spec regex can produce no backslash (built from ``SAFE_CHAR``-style
      classes); counts UTF-8 code points of the whole hole text minus ``offset`` (the delimiters,
      e.g. 3 for `` "abc"``).
    """

    min: int = 0
    max: int | None = None
    mode: Literal["json_string", "codepoints"] = "json_string"
    lead: str = " "       # json_string mode: the text before the opening quote
    offset: int = 0       # codepoints mode: code points of the hole that are not string content


@dataclass(frozen=True)
class CompileLimits:
    """Caps that turn a runaway compile into a clear error instead of a hang."""

    regex_timeout_s: float = 10.0       # one hole's whole compile: byte DFA, minimisation, lift, trim
    max_lift_work: int = 200_000_000     # DFA states x distinct token prefixes at one byte depth
    max_states: int = 200_000            # states of a token automaton after the counter product


@dataclass(frozen=True, eq=False)
class TokenAutomaton:
    """An immutable token-level automaton with token classes.

    ``trans[s, c]`` is the state after any token of class ``c`` in state ``s`` (``-1``: dead).
    Every state is live: reachable from ``initial`` and able to reach an accepting state.
    """

    trans: np.ndarray         # (S, C) int32
    initial: int
    accepting: np.ndarray     # (S,) bool
    token_class: np.ndarray   # (V,) int32, -1 for tokens never allowed
    class_size: np.ndarray    # (C,) int64, tokens per class
    class_rep: np.ndarray     # (C,) int64, one token of each class (the token when a class is forced)
    regex: str = ""
    min_tokens: int = 0       # fewest tokens of an accepted text
    max_tokens: int | None = None  # most tokens of an accepted text (None: unbounded, a cycle)
    _derived: dict = field(default_factory=dict, repr=False)

    def derived(self, key, build):
        """Data derived from this automaton alone, built once by ``build()`` and kept with it
        (the decode stage's device tables: a server batch is regrouped whenever a request joins
        or leaves, and only the hole placement is new then). Never stored on disk."""
        hit = self._derived.get(key)
        if hit is None:
            hit = self._derived[key] = build()
        return hit

    @property
    def num_states(self) -> int:
        return self.trans.shape[0]

    @property
    def num_classes(self) -> int:
        return self.trans.shape[1]

    def accepts(self, token_ids) -> bool:
        """Whether this token sequence is accepted (a reference check, not the hot path)."""
        s = self.initial
        for t in token_ids:
            c = int(self.token_class[t]) if 0 <= t < len(self.token_class) else -1
            if c < 0:
                return False
            s = int(self.trans[s, c])
            if s < 0:
                return False
        return bool(self.accepting[s])

    def closing_tokens(self) -> np.ndarray:
        """(V,) bool: the tokens that can finish a value, moving some state to an accepting
        state with no way on (the closing quote of a string; not a digit, which more digits
        may follow). Where one stands decides the value's length."""
        def build():
            final = self.accepting & (self.trans < 0).all(1)
            nxt = self.trans
            cls = (np.where(nxt >= 0, final[np.maximum(nxt, 0)], False)).any(0)
            return np.concatenate([cls, [False]])[self.token_class]   # class -1: never
        return self.derived("closing_tokens", build)

    @property
    def nbytes(self) -> int:
        return self.trans.nbytes + self.accepting.nbytes + self.token_class.nbytes + self.class_size.nbytes


def _classes(nxt: np.ndarray, cnt: np.ndarray | None, token_rep: np.ndarray):
    """Group tokens by their column (next state and count in every state)."""
    if nxt.shape[1] == 0:                                   # no token survives anywhere
        return np.full(len(token_rep), -1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    sig = nxt.T if cnt is None else np.concatenate([nxt, cnt], axis=0).T   # (U, Q or 2Q)
    rep_class = _unique_rows(sig)
    has_token = np.zeros(nxt.shape[1], dtype=bool)
    has_token[token_rep[token_rep >= 0]] = True
    rep_alive = (nxt >= 0).any(axis=0) & has_token     # the empty row (specials) is no class
    alive_idx = np.nonzero(rep_alive)[0]
    labels, pos, dense = np.unique(rep_class[alive_idx], return_index=True, return_inverse=True)
    rep_class = np.full(len(rep_class), -1, dtype=np.int64)
    rep_class[alive_idx] = dense.reshape(-1)                # classes numbered 0..C-1
    first = alive_idx[pos]                                  # one walked token per class
    token_class = np.where(token_rep >= 0, rep_class[np.maximum(token_rep, 0)], -1)
    return token_class, first


def _counter_increments(dfa: ByteDFA, length: CharLength) -> tuple[np.ndarray, int, int | None]:
    """Per byte transition, 1 where a character of the string value is completed."""
    if length.mode == "json_string":
        loop = dfa.run((length.lead + '"').encode())
        if loop == DEAD:
            raise ValueError("json_string length on a hole that does not start with lead + quote")
        inc = (dfa.table == loop).astype(np.int64)  # every entry into the body loop state ends a char
        offset = 1                                   # the opening quote enters it once
    else:
        inc = np.ones(dfa.table.shape, dtype=np.int64)
        inc[:, 0x80:0xC0] = 0                        # UTF-8 continuation bytes
        offset = length.offset
    inc[dfa.table == DEAD] = 0
    lo = length.min + offset
    hi = None if length.max is None else length.max + offset
    return inc, lo, hi


def build_token_automaton(regex: str, vocab, length: CharLength | None = None,
                          limits: CompileLimits = CompileLimits(), *,
                          dfa: ByteDFA | None = None) -> TokenAutomaton:
    """Compile ``regex`` (and optional character bounds) to a trimmed, class-compressed automaton.

    With ``dfa`` the byte automaton is given (built without a regex, e.g. from a grammar) and
    ``regex`` is only its label."""
    lifted = None
    if dfa is None:
        dfa = regex_to_byte_dfa(regex, timeout_s=limits.regex_timeout_s)
        if length is None:
            lifted = (lift_reusing_tail(regex, dfa, vocab, limits)
                      or lift_reusing_components(dfa, vocab, limits))
    inc_table, lo, hi = (None, 0, None) if length is None else _counter_increments(dfa, length)
    nxt, cnt, token_rep = lifted or _lift(dfa, vocab, inc_table, limits)
    token_class, reps = _classes(nxt, cnt, token_rep)
    base = nxt[:, reps]                                   # (Q, C)
    acc = dfa.accepting
    if inc_table is None:
        trans, accepting, initial = base, acc.copy(), dfa.initial
    else:
        # product with a counter k in 0..K; without an upper bound k saturates at the lower one
        k_n = (hi if hi is not None else lo) + 1
        q_n, c_n = base.shape
        if q_n * k_n > limits.max_states:
            raise CompileLimitError(
                f"length bounds make {q_n * k_n:,} automaton states (> {limits.max_states:,}); "
                "raise CompileLimits.max_states or lower maxLength", limit="max_states",
                value=q_n * k_n)
        incs = cnt[:, reps]                               # (Q, C)
        if native.LIB is not None:
            trans = native.counter_product(base, incs, k_n, saturate=hi is None)
        else:
            k = np.arange(k_n)[None, :, None]             # (1, K, 1)
            k2 = k + incs[:, None, :]                     # (Q, K, C)
            if hi is None:
                k2 = np.minimum(k2, k_n - 1)
            ok = (base[:, None, :] >= 0) & (k2 < k_n)
            trans = np.where(ok, base[:, None, :] * k_n + np.minimum(k2, k_n - 1),
                             -1).reshape(q_n * k_n, c_n)
        accepting = (acc[:, None] & (np.arange(k_n)[None, :] >= lo)).reshape(-1)
        initial = dfa.initial * k_n
    return _trim(trans, initial, accepting, token_class, regex)


def _trim(trans, initial, accepting, token_class, regex) -> TokenAutomaton:
    """Keep live states only, drop classes that never fire, renumber; compute min_tokens."""
    if native.LIB is not None:
        dist, keep, t, used = native.trim(trans, initial, accepting)
    else:
        dist, keep, t, used = _trim_table(trans, initial, accepting)
    if t is None:
        raise EmptyLanguage(regex)
    idx = np.cumsum(keep) - 1
    cmap = np.cumsum(used) - 1
    if len(used) == 0:                       # the language is just the empty text
        tc = np.full(len(token_class), -1, dtype=np.int64)
    else:
        tc = np.where(token_class >= 0, np.where(used[np.maximum(token_class, 0)],
                                                 cmap[np.maximum(token_class, 0)], -1), -1)
    class_size = np.bincount(tc[tc >= 0], minlength=t.shape[1]).astype(np.int64)
    class_rep = np.zeros(t.shape[1], dtype=np.int64)
    ids = np.nonzero(tc >= 0)[0]
    class_rep[tc[ids[::-1]]] = ids[::-1]      # reversed so the smallest id of each class wins
    acc = accepting[keep]
    min_tokens = int(dist[keep][acc].min())
    max_tokens = _longest_path(t, int(idx[initial]), acc)
    return TokenAutomaton(trans=t.astype(np.int32, copy=False), initial=int(idx[initial]), accepting=acc,
                          token_class=tc.astype(np.int32), class_size=class_size, class_rep=class_rep, regex=regex,
                          min_tokens=min_tokens, max_tokens=max_tokens)


def _trim_table(trans, initial, accepting):
    """The reference of :func:`native.trim`: (dist, keep, table, used)."""
    trans = trans.astype(np.int64)
    dist = _reach(trans, initial)                          # fewest tokens to each state
    keep = (dist >= 0) & coaccessible(trans, accepting)   # ... and it can still accept
    if not keep[initial]:
        return dist, keep, None, None
    idx = np.cumsum(keep) - 1
    t = trans[keep]
    t = np.where((t >= 0) & keep[np.maximum(t, 0)], idx[np.maximum(t, 0)], -1)
    used = (t >= 0).any(axis=0)
    return dist, keep, t[:, used], used


def _reach(trans: np.ndarray, initial: int) -> np.ndarray:
    """Fewest tokens from ``initial`` to each state (-1: unreachable), breadth first."""
    s_n = trans.shape[0]
    dist = np.full(s_n, -1, dtype=np.int64)
    dist[initial] = 0
    frontier = np.array([initial])
    scratch = np.empty(s_n, dtype=np.int64)
    d = 0
    while frontier.size:
        check_clock()
        d += 1
        nxt = trans[frontier].reshape(-1)
        nxt = nxt[nxt >= 0]
        nxt = distinct(nxt[dist[nxt] < 0], scratch)
        dist[nxt] = d
        frontier = nxt
    return dist


def _longest_path(trans: np.ndarray, initial: int, accepting: np.ndarray) -> int | None:
    """Most tokens on an accepted path, or None when a (live) cycle makes it unbounded.

    Kahn's topological order, one whole layer of sources at a time (vectorised)."""
    if native.LIB is not None:
        return native.longest_path(trans, initial, accepting)
    s_n = trans.shape[0]
    src, cls = np.nonzero(trans >= 0)
    dst = trans[src, cls]
    pair = np.unique(src.astype(np.int64) * s_n + dst)            # distinct edges
    src, dst = pair // s_n, pair % s_n
    starts = np.searchsorted(src, np.arange(s_n + 1))
    indeg = np.bincount(dst, minlength=s_n)
    best = np.full(s_n, -1, dtype=np.int64)
    best[initial] = 0
    layer = np.nonzero(indeg == 0)[0]
    scratch = np.empty(s_n, dtype=np.int64)
    seen = 0
    while layer.size:
        check_clock()
        seen += layer.size
        lo, hi = starts[layer], starts[layer + 1]
        n = hi - lo
        if not n.sum():
            break
        idx = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        a, b = src[idx], dst[idx]
        ok = best[a] >= 0
        np.maximum.at(best, b[ok], best[a[ok]] + 1)
        np.subtract.at(indeg, b, 1)
        cand = distinct(b, scratch)
        layer = cand[indeg[cand] == 0]
    if seen < s_n:
        return None
    return int(best[accepting].max())


def shortest_length(auto: TokenAutomaton, at_least: int, at_most: int) -> int | None:
    """The fewest tokens, ``at_least`` or more, of an accepted text (None: none up to
    ``at_most``). A hole that starts small needs room for more than its shortest value (an
    array's first item, not only ``[]``), or the model can never fill it to the brim and ask
    for more."""
    layer = np.array([auto.initial])
    scratch = np.empty(auto.num_states, dtype=np.int64)
    for k in range(1, at_most + 1):
        nxt = auto.trans[layer].ravel()
        layer = distinct(nxt[nxt >= 0], scratch)
        if k >= at_least and auto.accepting[layer].any():
            return k
    return None


class EmptyLanguage(CompileLimitError):
    """No token sequence of this vocabulary spells a text the regex accepts."""

    def __init__(self, regex: str):
        super().__init__(f"no token sequence matches the regex {regex[:120]!r} with this vocabulary",
                         limit="language", value=None)


AUTOMATON_CACHE_SIZE = 512
_AUTO_CACHE = LRU(AUTOMATON_CACHE_SIZE)


def token_automaton(regex: str, vocab, length: CharLength | None = None,
                    limits: CompileLimits = CompileLimits(), *,
                    dfa=None) -> TokenAutomaton:
    """Cached :func:`build_token_automaton`, keyed by (vocabulary fingerprint, regex, length).

    With ``dfa`` given (a :class:`ByteDFA`, or a function that builds one, called only on a
    cache miss), ``regex`` must be a key that names that automaton uniquely. Slow builds are
    also kept on disk (:mod:`~constrained_dlm.automata.disk_cache`)."""
    key = (vocab.fingerprint, regex, length)
    hit = _AUTO_CACHE.get(key)
    if hit is None:
        stored = disk_cache.load(key)
        hit = TokenAutomaton(**stored) if stored is not None else None
    if hit is not None and hit.num_states > limits.max_states:
        # built earlier under looser limits: these limits must still fail as a build would
        raise CompileLimitError(
            f"the automaton has {hit.num_states:,} states (> {limits.max_states:,}); raise "
            "CompileLimits.max_states or simplify the spec", limit="max_states",
            value=hit.num_states)
    auto = hit
    if auto is None:
        t0 = time.perf_counter()
        with compile_clock(limits.regex_timeout_s):
            auto = build_token_automaton(regex, vocab, length, limits,
                                         dfa=dfa() if callable(dfa) else dfa)
        if time.perf_counter() - t0 >= disk_cache.MIN_BUILD_S:
            disk_cache.store(key, auto)
    _AUTO_CACHE.put(key, auto)
    return auto


def clear_caches() -> None:
    """Forget compiled automata (for benchmarks that measure cold compiles)."""
    _AUTO_CACHE.clear()
    _TAIL_LIFTS.clear()
    _TAIL_SEEN.clear()
    _PARTS.clear()
    _SEEN.clear()
    byte_dfa._CACHE.clear()
