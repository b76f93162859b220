"""Compile stage: byte automata combined directly (sequence, choice, repetition), with sharing.

A regex can only say "this sub-language again" by writing it out again, so a grammar whose rule
refers to another rule ``r`` times per nesting level becomes a regex ``r ** depth`` times longer,
and a Thompson automaton as large, even when the minimal automaton is small. Here sub-automata
are built once, minimised, and embedded where they are used: an expression over
already-minimal :class:`ByteDFA` leaves is turned into an NFA (each leaf copied once per use, one
level deep only), determinised over byte classes and minimised again. ``grammar.py`` builds one
automaton per (rule, depth, context) this way.

Usage::

    from constrained_dlm.automata.byte_dfa import regex_to_byte_dfa
    a, b = regex_to_byte_dfa("[0-9]+"), regex_to_byte_dfa(",")
    lst = compile_expr(("seq", [("dfa", a), ("rep", ("seq", [("dfa", b), ("dfa", a)]), 0, None)]))

Expressions: ``("dfa", ByteDFA)``, ``("seq", [e...])`` (empty: the empty text), ``("alt", [e...])``
(at least one), ``("rep", e, lo, hi)`` (``hi`` None: unbounded).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import CompileLimitError
from .byte_dfa import DEAD, ByteDFA, _unique_rows, moore_blocks, quotient_table
from . import native
from .clock import check_clock


class _Timeout(Exception):
    pass


class _NFA:
    """States with at most one byte-class successor per class (leaves are deterministic) and
    epsilon edges (the glue between leaves)."""

    def __init__(self, byte_class: np.ndarray, n_classes: int, max_states: int, deadline: float):
        self.byte_class = byte_class
        self.k = n_classes
        self.blocks: list[tuple[int, np.ndarray]] = []   # (offset, (n, K) local table)
        self.n = 0
        self.eps: dict[int, list[int]] = {}
        self.max_states = max_states
        self.deadline = deadline
        self._class_tables: dict[int, np.ndarray] = {}

    def alloc(self, count: int = 1) -> int:
        if self.n + count > self.max_states:
            raise CompileLimitError(
                f"combining automata needs more than {self.max_states:,} NFA states; raise "
                "CompileLimits.max_states or lower the nesting depth", limit="max_states",
                value=self.max_states)
        off = self.n
        self.n += count
        return off

    def edge(self, a: int, b: int) -> None:
        self.eps.setdefault(a, []).append(b)

    def _local(self, dfa: ByteDFA) -> np.ndarray:
        hit = self._class_tables.get(id(dfa))
        if hit is None:
            # one representative byte per global class: columns are equal within a class
            reps = np.zeros(self.k, dtype=np.int64)
            reps[self.byte_class[::-1]] = np.arange(255, -1, -1)
            hit = self._class_tables[id(dfa)] = dfa.table[:, reps]
        return hit

    def build(self, expr, s: int, t: int) -> None:
        if time.monotonic() > self.deadline:
            raise _Timeout
        kind = expr[0]
        if kind == "dfa":
            dfa: ByteDFA = expr[1]
            off = self.alloc(dfa.num_states)
            local = self._local(dfa)
            self.blocks.append((off, np.where(local >= 0, local + off, -1)))
            self.edge(s, off + dfa.initial)
            for q in np.nonzero(dfa.accepting)[0]:
                self.edge(off + int(q), t)
        elif kind == "seq":
            items = expr[1]
            if not items:
                self.edge(s, t)
                return
            cur = s
            for i, item in enumerate(items):
                nxt = t if i == len(items) - 1 else self.alloc()
                self.build(item, cur, nxt)
                cur = nxt
        elif kind == "alt":
            for item in expr[1]:
                a = self.alloc()
                self.edge(s, a)
                self.build(item, a, t)
        elif kind == "rep":
            _, body, lo, hi = expr
            cur = s
            for _ in range(lo):
                nxt = self.alloc()
                self.build(body, cur, nxt)
                cur = nxt
            if hi is None:
                loop = self.alloc()
                back = self.alloc()
                self.edge(cur, loop)
                self.build(body, loop, back)
                self.edge(back, loop)
                self.edge(loop, t)
            else:
                self.edge(cur, t)
                for _ in range(hi - lo):
                    nxt = self.alloc()
                    self.build(body, cur, nxt)
                    self.edge(nxt, t)
                    cur = nxt
        else:
            raise ValueError(f"unknown automaton expression {kind!r}")

    def table(self) -> np.ndarray:
        tab = np.full((self.n, self.k), -1, dtype=np.int32)
        for off, block in self.blocks:
            tab[off:off + block.shape[0]] = block
        return tab


def _leaves(expr, out: list) -> list:
    if expr[0] == "dfa":
        out.append(expr[1])
    elif expr[0] in ("seq", "alt"):
        for e in expr[1]:
            _leaves(e, out)
    elif expr[0] == "rep":
        _leaves(expr[1], out)
    return out


def _byte_classes(dfas) -> tuple[np.ndarray, int]:
    """Bytes no leaf tells apart share a class: (256,) class ids and their count."""
    sigs = []
    seen = set()
    for d in dfas:
        if id(d) in seen:
            continue
        seen.add(id(d))
        sigs.append(d.table.T)                       # (256, Q_d)
    sig = np.concatenate(sigs, axis=1) if sigs else np.zeros((256, 1), dtype=np.int32)
    cls = _unique_rows(sig)
    return cls, int(cls.max()) + 1


def compile_expr(expr, *, max_states: int = 200_000, timeout_s: float = 10.0) -> ByteDFA | None:
    """The minimal DFA of ``expr`` (None when its language is empty)."""
    deadline = time.monotonic() + timeout_s
    leaves = _leaves(expr, [])
    byte_class, k = _byte_classes(leaves)
    nfa = _NFA(byte_class, k, max_states * 4, deadline)
    s, t = nfa.alloc(), nfa.alloc()
    try:
        nfa.build(expr, s, t)
        small, accepting = _determinize(nfa, s, t, max_states, deadline)
    except _Timeout:
        raise CompileLimitError(
            f"combining automata took longer than {timeout_s:g} s and was stopped; raise "
            "CompileLimits.regex_timeout_s or lower the nesting depth", limit="regex_timeout_s",
            value=timeout_s) from None
    out = _trim_minimize(small, accepting, 0)
    if out is None:
        return None
    small, accepting, initial = out
    return ByteDFA(table=np.ascontiguousarray(small[:, byte_class]), initial=initial,
                   accepting=accepting)


def _determinize(nfa: _NFA, start: int, final: int, max_states: int, deadline: float):
    """Subset construction over byte classes: ((Q, K) table, (Q,) accepting), initial state 0.

    Breadth-first in batches. Subsets are numbered as they appear ("set ids"); a subset that is
    the closure of a single NFA state (most of them: the leaves are deterministic, subsets only
    grow where a leaf may end and the next begin) has its successors looked up for the whole
    batch at once; only larger subsets are merged one by one.
    """
    tab = nfa.table()                      # (N, K)
    n, k = tab.shape
    eps = nfa.eps
    sets: list[frozenset] = []
    set_id: dict[frozenset, int] = {}

    def intern(fs: frozenset) -> int:
        j = set_id.get(fs)
        if j is None:
            j = set_id[fs] = len(sets)
            sets.append(fs)
        return j

    # the closure of every NFA state, as a set id: singletons {q} are ids 0..n-1, interned up front
    sets.extend(frozenset((q,)) for q in range(n))
    closure_of = np.arange(n, dtype=np.int64)
    single = np.arange(n, dtype=np.int64)              # set id -> its only member, or -1
    for q in list(eps):
        out, stack = {q}, [q]
        while stack:
            for r in eps.get(stack.pop(), ()):
                if r not in out:
                    out.add(r)
                    stack.append(r)
        if len(out) > 1:
            closure_of[q] = intern(frozenset(out))
    single = np.concatenate([single, np.full(len(sets) - n, -1, dtype=np.int64)])
    start_id = int(closure_of[start])
    dfa_of = {start_id: 0}                              # set id -> DFA state
    order = [start_id]
    rows: list[np.ndarray] = []                         # per DFA state: (K,) successor set ids
    done = 0
    while done < len(order):
        check_clock()
        if time.monotonic() > deadline:
            raise _Timeout
        batch = np.asarray(order[done:], dtype=np.int64)
        done = len(order)
        batch_rows = np.full((len(batch), k), -1, dtype=np.int64)
        if len(single) < len(sets):                     # subsets interned since: not singletons
            single = np.concatenate([single, np.full(len(sets) - len(single), -1, dtype=np.int64)])
        mem = single[batch]
        one = mem >= 0
        if one.any():
            t = tab[mem[one]]
            batch_rows[one] = np.where(t >= 0, closure_of[np.maximum(t, 0)], -1)
        multi = np.nonzero(~one)[0]
        if len(multi):
            parts = [np.fromiter(sets[j], dtype=np.int64) for j in batch[multi].tolist()]
            sizes = np.array([len(p) for p in parts])
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            sub = tab[np.concatenate(parts)]                         # (M, K) member rows
            big = np.iinfo(sub.dtype).max
            hi = np.maximum.reduceat(sub, starts, axis=0)             # (m, K) per subset
            lo = np.minimum.reduceat(np.where(sub >= 0, sub, big), starts, axis=0)
            det = (hi >= 0) & (hi == lo)                              # a single target
            out = np.where(det, closure_of[np.maximum(hi, 0)], -1)
            rs, cs = np.nonzero((hi >= 0) & ~det)
            for r, c in zip(rs.tolist(), cs.tolist()):
                col = sub[starts[r]:starts[r] + sizes[r], c].tolist()
                key = frozenset().union(*(sets[closure_of[x]] for x in set(col) if x >= 0))
                out[r, c] = intern(key)
            batch_rows[multi] = out
        rows.append(batch_rows)
        for j in np.unique(batch_rows[batch_rows >= 0]).tolist():
            if j not in dfa_of:
                dfa_of[j] = len(order)
                order.append(j)
        if len(order) > max_states:
            raise CompileLimitError(
                f"the combined automaton passes {max_states:,} states; raise "
                "CompileLimits.max_states or lower the nesting depth", limit="max_states",
                value=max_states)
    succ = np.concatenate(rows, axis=0)                   # (Q, K) set ids
    lookup = np.full(len(sets), -1, dtype=np.int64)
    ids = np.fromiter(dfa_of.keys(), dtype=np.int64, count=len(dfa_of))
    lookup[ids] = np.fromiter(dfa_of.values(), dtype=np.int64, count=len(dfa_of))
    small = np.where(succ >= 0, lookup[np.maximum(succ, 0)], DEAD).astype(np.int32)
    accepting = np.array([final in sets[j] for j in order], dtype=bool)
    return small, accepting


def _trim_minimize(t: np.ndarray, accepting: np.ndarray, initial: int):
    """Keep states that can reach acceptance, then merge states with the same future (Moore).

    Works on a (Q, K) byte-class table; returns (table, accepting, initial) or None when the
    language is empty."""
    live = coaccessible(t, accepting)
    if not live[initial]:
        return None
    idx = np.cumsum(live) - 1
    t = t[live]
    t = np.where((t >= 0) & live[np.maximum(t, 0)], idx[np.maximum(t, 0)], DEAD)
    acc = accepting[live]
    initial = int(idx[initial])
    block, n_blocks = moore_blocks(t, acc)
    out, out_acc = quotient_table(block, n_blocks, t, acc, initial)
    return out, out_acc, 0


def distinct(x: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """The distinct values of ``x`` (indices into ``scratch``), in no particular order, in
    O(len(x)): whichever write to ``scratch`` survives marks one copy of each value. Breadth-first
    layers call this thousands of times on small arrays (a length counter of 2,048 characters),
    where ``np.unique`` cost more than the layer itself."""
    pos = np.arange(len(x))
    scratch[x] = pos
    return x[scratch[x] == pos]


def coaccessible(t: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """States from which an accepting state can be reached (reverse breadth-first search)."""
    if native.LIB is not None:
        return native.coaccessible(t, accepting)
    q_n = t.shape[0]
    src, cls = np.nonzero(t >= 0)
    dst = t[src, cls].astype(np.int64)
    order = np.argsort(dst, kind="stable")
    src_by_dst = src[order]
    bounds = np.searchsorted(dst[order], np.arange(q_n + 1))
    live = accepting.copy()
    frontier = np.nonzero(live)[0]
    scratch = np.empty(q_n, dtype=np.int64)
    while frontier.size:
        check_clock()
        lo, hi = bounds[frontier], bounds[frontier + 1]
        n_per = hi - lo
        if not n_per.sum():
            break
        idx = np.repeat(lo - np.concatenate([[0], np.cumsum(n_per)[:-1]]), n_per) + \
            np.arange(int(n_per.sum()))
        preds = distinct(src_by_dst[idx], scratch)
        frontier = preds[~live[preds]]
        live[frontier] = True
    return live


def trim(dfa: ByteDFA) -> ByteDFA | None:
    """Drop states that cannot reach acceptance, then minimise; None for the empty language."""
    out = _trim_minimize(dfa.table, dfa.accepting, dfa.initial)
    if out is None:
        return None
    table, accepting, initial = out
    return ByteDFA(table=table, initial=initial, accepting=accepting)


MARK = 0xFF
"""A byte that never occurs in UTF-8 text, used to mark where one grammar terminal ends."""
WORD_BYTES = np.zeros(256, dtype=bool)
WORD_BYTES[list(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")] = True
WORD_BYTES[0x80:0x100] = True                  # any non-ASCII character counts as a letter
WORD_BYTES[MARK] = False


def byte_dfa_of(byte: int) -> ByteDFA:
    """The automaton of the one-byte text ``byte``."""
    table = np.full((2, 256), DEAD, dtype=np.int32)
    table[0, byte] = 1
    return ByteDFA(table=table, initial=0, accepting=np.array([False, True]))


def separate_words(dfa: ByteDFA, *, marker: int = MARK, max_states: int = 200_000,
                   timeout_s: float = 10.0) -> ByteDFA | None:
    """Erase the boundary ``marker`` bytes, keeping only texts that have a reading in which no
    marked boundary sits between two word characters.

    ``dfa`` reads texts where each terminal is followed by ``marker`` (then its ignore matches).
    A boundary between a terminal ending with a word character and one starting with a word
    character, with no ignore match between, would be read by any real tokenizer as one word
    (``notx``, ``1if``); the product with a three-state checker (last byte a word character /
    just after a marker that follows one / other) rejects exactly those readings, then the markers
    become empty moves and the result is determinised and minimised again. Exact: a text is kept
    when some reading of it passes, which is what a parser that tries every split (lark's
    ``dynamic_complete``) needs.
    """
    deadline = time.monotonic() + timeout_s
    q_n = dfa.num_states
    # byte classes: the automaton's own, split by word / non-word and with the marker alone
    sig = np.concatenate([dfa.table.T, WORD_BYTES[:, None].astype(np.int32),
                          (np.arange(256) == marker)[:, None].astype(np.int32)], axis=1)
    byte_class = _unique_rows(sig)
    k = int(byte_class.max()) + 1
    reps = np.zeros(k, dtype=np.int64)
    reps[byte_class[::-1]] = np.arange(255, -1, -1)
    m_cls = int(byte_class[marker])
    word = WORD_BYTES[reps]                                             # (K,)
    small = dfa.table[:, reps].astype(np.int64)                         # (Q, K)
    # checker c: 0 other, 1 after a word character, 2 right after a marker that follows one
    c_next = np.empty((3, k), dtype=np.int64)
    c_next[:, :] = np.where(word, 1, 0)[None, :]
    c_next[2, word] = -1                                                # word char glued on: dead
    n = 3 * q_n + 1                                                     # + a final state
    final = n - 1
    tab = np.full((n, k), -1, dtype=np.int64)
    for c in range(3):
        tgt = small                                                     # (Q, K)
        cn = c_next[c][None, :]
        ok = (tgt >= 0) & (cn >= 0)
        ok[:, m_cls] = False
        tab[c * q_n:(c + 1) * q_n] = np.where(ok, np.maximum(cn, 0) * q_n + np.maximum(tgt, 0), -1)
    eps: dict[int, list[int]] = {}
    after_mark = {0: 0, 1: 2, 2: 2}
    for q in np.nonzero(small[:, m_cls] >= 0)[0].tolist():
        r = int(small[q, m_cls])
        for c in range(3):
            eps.setdefault(c * q_n + q, []).append(after_mark[c] * q_n + r)
    for q in np.nonzero(dfa.accepting)[0].tolist():
        for c in range(3):
            eps.setdefault(c * q_n + q, []).append(final)

    class _Flat:
        pass

    nfa = _Flat()
    nfa.table = lambda: tab
    nfa.eps = eps
    nfa.k = k
    try:
        small_out, accepting = _determinize(nfa, dfa.initial, final, max_states, deadline)
    except _Timeout:
        raise CompileLimitError(
            f"separating words took longer than {timeout_s:g} s; lower the nesting depth",
            limit="regex_timeout_s", value=timeout_s) from None
    out = _trim_minimize(small_out, accepting, 0)
    if out is None:
        return None
    t, acc, initial = out
    t = t.copy()
    t[:, m_cls] = DEAD                                                  # no marker is left
    return ByteDFA(table=np.ascontiguousarray(t[:, byte_class]), initial=initial, accepting=acc)


def epsilon_dfa() -> ByteDFA:
    """The automaton of the empty text only."""
    return ByteDFA(table=np.full((1, 256), DEAD, dtype=np.int32), initial=0,
                   accepting=np.array([True]))


def quotient(dfa: ByteDFA, before: bytes, after: bytes) -> ByteDFA | None:
    """The texts ``m`` with ``before + m + after`` in the language of ``dfa``: the left quotient
    by ``before`` (start where reading it leads) and the right quotient by ``after`` (accept
    where reading it leads to acceptance). Regular, exact, and as small as ``dfa``: a hole cut
    at any point inside the text of a regular language. None when no ``m`` fits."""
    start = dfa.run(before)
    if start == DEAD:
        return None
    cur = np.arange(dfa.num_states)
    for b in after:
        cur = np.where(cur >= 0, dfa.table[np.maximum(cur, 0), b], DEAD)
    accepting = (cur >= 0) & dfa.accepting[np.maximum(cur, 0)]
    keep = _reachable(dfa.table, start)          # the part after ``before`` only
    idx = np.cumsum(keep) - 1
    t = dfa.table[keep]
    t = np.where(t >= 0, idx[np.maximum(t, 0)], DEAD).astype(np.int32)
    return trim(ByteDFA(table=t, initial=int(idx[start]), accepting=accepting[keep]))


def _reachable(t: np.ndarray, initial: int) -> np.ndarray:
    """States reachable from ``initial`` (breadth-first over the whole table at once)."""
    seen = np.zeros(t.shape[0], dtype=bool)
    seen[initial] = True
    frontier = np.array([initial])
    while frontier.size:
        check_clock()
        nxt = np.unique(t[frontier])
        nxt = nxt[nxt >= 0]
        frontier = nxt[~seen[nxt]]
        seen[frontier] = True
    return seen


def shortest_text(dfa: ByteDFA, *, prefer: bytes = b" xs1(),=.:'\"\n") -> bytes | None:
    """A shortest accepted text (breadth-first; among equal lengths, bytes of ``prefer`` first,
    then ASCII), or None for the empty language. Used as a stand-in middle (a witness)."""
    order = list(prefer) + [b for b in range(128) if b not in prefer] + list(range(128, 256))
    seen = {dfa.initial: b""}
    frontier = [dfa.initial]
    while frontier:
        nxt = []
        for q in frontier:
            if dfa.accepting[q]:
                return seen[q]
            for b in order:
                r = int(dfa.table[q, b])
                if r != DEAD and r not in seen:
                    seen[r] = seen[q] + bytes([b])
                    nxt.append(r)
        frontier = nxt
    return None
