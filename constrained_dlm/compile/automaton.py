"""Compile stage: a byte DFA lifted to tokens and compressed into token classes.

Every token either dies or moves the automaton from each state to exactly one next state. Tokens
that do the same thing in *every* state form a class; per-step work then scales with classes
(tens to hundreds), not with the vocabulary (tens of thousands). A character counter (for
``minLength``/``maxLength``) is a product with a small counter, built here rather than by counted
repetition in the regex, which explodes.

Usage::

    auto = token_automaton(r"-?(0|[1-9][0-9]*)", vocab)
    auto.trans[s, auto.token_class[t]]   # next state after token t in state s (-1: dead)

Performance: lifting walks every token through the DFA, vectorised over tokens and states
(cost ~ states x total token bytes; ~10 ms for 15 states at 32k tokens). Results are cached per
(vocabulary, regex, length bounds), so primitive slots compile once per vocabulary.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from ..errors import CompileLimitError
from ..specs.pieces import CharLength
from .byte_dfa import DEAD, ByteDFA, regex_to_byte_dfa
from .lru import LRU


@dataclass(frozen=True)
class CompileLimits:
    """Caps that turn a runaway compile into a clear error instead of a hang."""

    regex_timeout_s: float = 10.0       # outlines-core determinisation of one regex
    max_lift_work: int = 2_000_000_000   # DFA states x vocabulary size walked when lifting to tokens
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
    _cache: dict = field(default_factory=dict, repr=False)

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

    @property
    def nbytes(self) -> int:
        return self.trans.nbytes + self.accepting.nbytes + self.token_class.nbytes + self.class_size.nbytes


# --- lifting -------------------------------------------------------------------------------------

FORCE_WALK: str | None = None     # tests: "trie" / "pairs" to exercise one walk; None picks
_VOCAB_VIEWS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _sorted_bytes(vocab):
    """Token bytes sorted by length (longest first), cached per vocabulary."""
    view = _VOCAB_VIEWS.get(vocab)
    if view is None:
        lengths = np.asarray(vocab.token_lengths())
        order = np.argsort(-lengths, kind="stable")
        bm = np.asarray(vocab.byte_matrix())[order]
        view = (order, bm.astype(np.int64), lengths)
        _VOCAB_VIEWS[vocab] = view
    return view


def _lift(dfa: ByteDFA, vocab, inc_table: np.ndarray | None, limits: CompileLimits):
    """Walk every distinct token from every state.

    Returns next (Q, U) with -1 dead, counts (Q, U) or None, and (V,) the column of each token
    (-1 for tokens that spell nothing).

    Bytes the DFA never tells apart form byte classes; tokens with the same byte-class sequence
    behave alike, so only one token per distinct sequence is walked (often 10x fewer).
    """
    from .byte_dfa import _unique_rows
    order, bm, lengths = _sorted_bytes(vocab)
    q_n, v_n = dfa.num_states, bm.shape[0]
    cols = dfa.table if inc_table is None else np.concatenate([dfa.table, inc_table], axis=0)
    _, byte_cls = np.unique(cols.T, axis=0, return_inverse=True)      # (256,) byte -> class
    byte_cls = np.append(byte_cls.reshape(-1), byte_cls.max() + 1)     # sentinel 256 -> own class
    seq = byte_cls[bm]                                                 # (V, L) class sequences
    label = _unique_rows(seq)
    _, first = np.unique(label, return_index=True)
    reps = np.sort(first)                                              # keeps longest-first order
    where = np.empty(label.max() + 1, dtype=np.int64)
    where[label[reps]] = np.arange(len(reps))
    rbm = bm[reps]
    u_n = len(reps)
    if q_n * u_n > limits.max_lift_work:
        raise CompileLimitError(
            f"lifting a {q_n}-state automaton to {u_n} distinct tokens passes the work cap "
            f"({q_n * u_n:,} > {limits.max_lift_work:,}); raise CompileLimits.max_lift_work",
            limit="max_lift_work", value=q_n * u_n)
    rlen = lengths[order][reps]
    dead = q_n
    ext = np.full((q_n + 1, 257), dead, dtype=np.int64)   # row `dead` absorbs; column 256 = padding
    ext[:q_n, :256] = np.where(dfa.table == DEAD, dead, dfa.table)
    ext[:, 256] = np.arange(q_n + 1)
    inc_ext = None
    if inc_table is not None:
        inc_ext = np.zeros((q_n + 1, 257), dtype=np.int64)
        inc_ext[:q_n, :256] = inc_table
    # Two ways to walk; both give the same tables. Dense automata (Python, free text: most bytes
    # valid almost everywhere) walk the token trie once for all states; sparse ones (JSON
    # scaffolds) walk only the (state, first byte) pairs that are alive.
    prefix_ids, n_nodes = _trie_levels(rbm, rlen)
    live_pairs = int(np.bincount(rbm[:, 0], minlength=257)[np.nonzero(dfa.table >= 0)[1]].sum())
    if FORCE_WALK == "trie" or (FORCE_WALK is None and
                                q_n * n_nodes < live_pairs * max(1.0, float(rlen.mean()))):
        nxt, cnt = _walk_trie(ext.astype(np.int32), inc_ext, rbm, rlen, prefix_ids, q_n, dead)
        back = where[label]
        token_rep = np.empty(v_n, dtype=np.int64)
        token_rep[order] = back
        token_rep[lengths == 0] = -1
        return nxt, cnt, token_rep
    # first step, sparse: pair each live (state, byte) transition with the tokens starting there
    fb = rbm[:, 0]
    by_fb = np.argsort(fb, kind="stable")
    lo_b = np.searchsorted(fb[by_fb], np.arange(257), "left")
    hi_b = np.searchsorted(fb[by_fb], np.arange(257), "right")
    qs, bs = np.nonzero(dfa.table >= 0)
    n_per = hi_b[bs] - lo_b[bs]
    total = int(n_per.sum())
    if total > limits.max_lift_work:
        raise CompileLimitError(
            f"lifting this automaton walks {total:,} (state, token) pairs (> "
            f"{limits.max_lift_work:,}); raise CompileLimits.max_lift_work", limit="max_lift_work",
            value=total)
    qi = np.repeat(qs, n_per)
    offs = np.repeat(lo_b[bs] - (np.cumsum(n_per) - n_per), n_per) + np.arange(total)
    ti = by_fb[offs]
    cur = np.repeat(ext[qs, bs], n_per)
    acc = np.repeat(inc_ext[qs, bs], n_per) if inc_ext is not None else None
    nxt = np.full((q_n, u_n), -1, dtype=np.int32)
    cnt = np.zeros((q_n, u_n), dtype=np.int32) if inc_ext is not None else None
    j = 1
    while qi.size:
        done = rlen[ti] <= j
        alive = cur != dead
        fin = done & alive
        nxt[qi[fin], ti[fin]] = cur[fin]
        if cnt is not None:
            cnt[qi[fin], ti[fin]] = acc[fin]
        keep = ~done & alive
        qi, ti, cur = qi[keep], ti[keep], cur[keep]
        if acc is not None:
            acc = acc[keep]
        if not qi.size:
            break
        byte = rbm[ti, j]
        if acc is not None:
            acc = acc + inc_ext[cur, byte]
        cur = ext[cur, byte]
        j += 1
    # token id -> its walked representative (-1 for tokens that never appear in text)
    back = where[label]
    token_rep = np.empty(v_n, dtype=np.int64)
    token_rep[order] = back
    token_rep[lengths == 0] = -1
    return nxt, cnt, token_rep


def _trie_levels(rbm: np.ndarray, rlen: np.ndarray):
    """Node id of each token's prefix at each depth (-1 past its end), and the node count."""
    u_n, l_n = rbm.shape
    ids = np.full((u_n, int(rlen.max()) if u_n else 0), -1, dtype=np.int64)
    prev = np.zeros(u_n, dtype=np.int64)
    total = 0
    for j in range(ids.shape[1]):
        on = rlen > j
        key = prev[on] * 257 + rbm[on, j]
        _, inv = np.unique(key, return_inverse=True)
        ids[on, j] = inv.reshape(-1)
        prev = np.where(on, ids[:, j], 0)
        total += int(inv.max()) + 1 if inv.size else 0
    return ids, total


def _walk_trie(ext, inc_ext, rbm, rlen, prefix_ids, q_n: int, dead: int):
    """Every state through every token, one trie node at a time: (Q, U) next states (-1 dead)
    and counter increments. Work: states x trie nodes (shared prefixes are walked once)."""
    u_n = rbm.shape[0]
    nxt_t = np.full((u_n, q_n), -1, dtype=np.int32)
    cnt_t = np.zeros((u_n, q_n), dtype=np.int32) if inc_ext is not None else None
    cur = np.arange(q_n, dtype=np.int32)[None, :]           # root: every state, one node
    acc = np.zeros_like(cur) if inc_ext is not None else None
    parent = np.zeros(u_n, dtype=np.int64)
    for j in range(prefix_ids.shape[1]):
        on = np.nonzero(rlen > j)[0]
        node = prefix_ids[on, j]
        first = np.unique(node, return_index=True)[1]       # one token per node
        rows = on[first]
        src = cur[parent[rows]]                             # (nodes, Q) states before byte j
        byte = rbm[rows, j][:, None]
        new = ext[src, byte]
        new_acc = acc[parent[rows]] + inc_ext[src, byte] if acc is not None else None
        ends = on[rlen[on] == j + 1]                        # tokens that end at this depth
        got = new[prefix_ids[ends, j]]
        nxt_t[ends] = np.where(got == dead, -1, got)
        if cnt_t is not None:
            cnt_t[ends] = np.where(got == dead, 0, new_acc[prefix_ids[ends, j]])
        cur, acc = new, new_acc
        parent = np.where(rlen > j, prefix_ids[:, j], 0)
    return nxt_t.T, (cnt_t.T if cnt_t is not None else None)


def _classes(nxt: np.ndarray, cnt: np.ndarray | None, token_rep: np.ndarray):
    """Group tokens by their column (next state and count in every state)."""
    from .byte_dfa import _unique_rows
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
            raise ValueError("json_string length on a slot that does not start with lead + quote")
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
    if dfa is None:
        dfa = regex_to_byte_dfa(regex, timeout_s=limits.regex_timeout_s)
    inc_table, lo, hi = (None, 0, None) if length is None else _counter_increments(dfa, length)
    nxt, cnt, token_rep = _lift(dfa, vocab, inc_table, limits)
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
        k = np.arange(k_n)[None, :, None]                 # (1, K, 1)
        k2 = k + incs[:, None, :]                         # (Q, K, C)
        if hi is None:
            k2 = np.minimum(k2, k_n - 1)
        ok = (base[:, None, :] >= 0) & (k2 < k_n)
        trans = np.where(ok, base[:, None, :] * k_n + np.minimum(k2, k_n - 1), -1).reshape(q_n * k_n, c_n)
        accepting = (acc[:, None] & (np.arange(k_n)[None, :] >= lo)).reshape(-1)
        initial = dfa.initial * k_n
    return _trim(trans.astype(np.int64), initial, accepting, token_class, regex)


def _trim(trans, initial, accepting, token_class, regex) -> TokenAutomaton:
    """Keep live states only, drop classes that never fire, renumber; compute min_tokens."""
    s_n, c_n = trans.shape
    # forward reachability (BFS) with distances = fewest tokens
    dist = np.full(s_n, -1, dtype=np.int64)
    dist[initial] = 0
    frontier = np.array([initial])
    d = 0
    while frontier.size:
        d += 1
        nxt = trans[frontier].reshape(-1)
        nxt = np.unique(nxt[nxt >= 0])
        nxt = nxt[dist[nxt] < 0]
        dist[nxt] = d
        frontier = nxt
    reach = dist >= 0
    # backward liveness: iterate to a fixpoint over the reverse edges
    live = accepting.copy()
    src, cls = np.nonzero(trans >= 0)
    dst = trans[src, cls]
    while True:
        new = live.copy()
        new[src[live[dst]]] = True
        if (new == live).all():
            break
        live = new
    keep = reach & live
    if not keep[initial]:
        raise EmptyLanguage(regex)
    idx = np.cumsum(keep) - 1
    t = trans[keep]
    t = np.where((t >= 0) & keep[np.maximum(t, 0)], idx[np.maximum(t, 0)], -1)
    used = (t >= 0).any(axis=0)
    cmap = np.cumsum(used) - 1
    t = t[:, used]
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
    return TokenAutomaton(trans=t.astype(np.int32), initial=int(idx[initial]), accepting=acc,
                          token_class=tc.astype(np.int32), class_size=class_size, class_rep=class_rep, regex=regex,
                          min_tokens=min_tokens, max_tokens=max_tokens)


def _longest_path(trans: np.ndarray, initial: int, accepting: np.ndarray) -> int | None:
    """Most tokens on an accepted path, or None when a (live) cycle makes it unbounded."""
    s_n = trans.shape[0]
    succ = [np.unique(row[row >= 0]) for row in trans]
    indeg = np.zeros(s_n, dtype=np.int64)
    for nx in succ:
        indeg[nx] += 1
    order, stack = [], [q for q in range(s_n) if indeg[q] == 0]
    while stack:
        q = stack.pop()
        order.append(q)
        for r in succ[q]:
            indeg[r] -= 1
            if indeg[r] == 0:
                stack.append(int(r))
    if len(order) < s_n:
        return None
    best = np.full(s_n, -1, dtype=np.int64)
    best[initial] = 0
    for q in order:
        if best[q] >= 0 and len(succ[q]):
            best[succ[q]] = np.maximum(best[succ[q]], best[q] + 1)
    return int(best[accepting].max())


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
    also kept on disk (:mod:`~constrained_dlm.compile.disk_cache`)."""
    from . import disk_cache
    key = (vocab.fingerprint, regex, length)
    hit = _AUTO_CACHE.get(key)
    if hit is None:
        hit = disk_cache.load(key)
    if hit is not None and hit.num_states > limits.max_states:
        # built earlier under looser limits: these limits must still fail as a build would
        raise CompileLimitError(
            f"the automaton has {hit.num_states:,} states (> {limits.max_states:,}); raise "
            "CompileLimits.max_states or simplify the spec", limit="max_states",
            value=hit.num_states)
    auto = hit
    if auto is None:
        t0 = time.perf_counter()
        auto = build_token_automaton(regex, vocab, length, limits,
                                     dfa=dfa() if callable(dfa) else dfa)
        if time.perf_counter() - t0 >= disk_cache.MIN_BUILD_S:
            disk_cache.store(key, auto)
    _AUTO_CACHE.put(key, auto)
    return auto


def clear_caches() -> None:
    """Forget compiled automata (for benchmarks that measure cold compiles)."""
    from . import byte_dfa
    _AUTO_CACHE.clear()
    byte_dfa._CACHE.clear()
