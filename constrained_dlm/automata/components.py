"""Compile stage: the lift of a structure reuses the lift of the strings inside it.

A JSON object's hole is one DFA: keys, punctuation and the bodies of its string members. The
body states keep almost every token prefix alive, so lifting such a DFA walks the whole byte
trie of the vocabulary (20-27 ms at 128k tokens), although each body behaves exactly like a
lone JSON string, whose lift is computed once per vocabulary. Here the states of the DFA that
are copies of a declared component (a prefix-free regex, :func:`declare_component`) take the
component's token moves, mapped; the tokens that leave a copy through its end (``",`` ...) are
walked from there; only the remaining states walk the vocabulary, and from those few tokens
survive. Exact: a copy is checked state for state, see :func:`_copies`.
"""

from __future__ import annotations

import numpy as np

from .byte_dfa import DEAD, ByteDFA, regex_to_byte_dfa, row_labels
from .clock import check_clock
from .lift import _group, _lift
from .lru import LRU

_DECLARED: list[str] = []
_PARTS = LRU(64)          # (vocabulary fingerprint, regex) -> _Part
_SEEN = LRU(64)
MIN_STATES = 12           # smaller DFAs lift fast enough whole
BUILD_AFTER = 8           # structures that could use a component before its lift is built


def declare_component(regex: str) -> None:
    """Let structures that contain ``regex`` (prefix-free: nothing continues an accepted text,
    e.g. a JSON string) reuse its lift. The spec layer declares its JSON string."""
    if regex not in _DECLARED:
        _DECLARED.append(regex)


class _Part:
    """A component's DFA and lift, and per state the tokens that pass through its end before
    their last byte (``exit_tok[q]``, the byte where the rest starts, the accepting state)."""

    def __init__(self, regex: str, vocab, limits):
        self.dfa = dfa = regex_to_byte_dfa(regex, timeout_s=limits.regex_timeout_s)
        self.nxt, _, self.rep = _lift(dfa, vocab, None, limits)
        q_n = dfa.num_states
        # the same DFA where an accepting state goes on to a sink X on any byte: a token that
        # lands in X from q passed through an end of the component with bytes left over
        x = q_n
        table = np.where(dfa.accepting[:, None], x, dfa.table).astype(np.int32)
        table = np.concatenate([table, np.full((1, 256), x, dtype=np.int32)])
        star = ByteDFA(table=table, initial=dfa.initial,
                       accepting=np.append(dfa.accepting, False))
        s_nxt, _, s_rep = _lift(star, vocab, None, limits)
        lengths = np.asarray(vocab.token_lengths())
        bm = np.asarray(vocab.byte_matrix())
        self.exit_tok, self.exit_at, self.exit_acc = [], [], []
        for q in range(q_n):
            hit = (s_rep >= 0) & (s_nxt[q][np.maximum(s_rep, 0)] == x)
            tok = np.nonzero(hit)[0]
            st = np.full(len(tok), q, dtype=np.int64)
            at = np.full(len(tok), -1, dtype=np.int64)
            for j in range(int(lengths[tok].max(initial=0))):
                going = (at < 0) & (st >= 0)
                if not going.any():
                    break
                st[going] = dfa.table[st[going], bm[tok[going], j]]
                reached = going & (st >= 0) & dfa.accepting[np.maximum(st, 0)]
                at[reached] = j + 1
            self.exit_tok.append(tok)
            self.exit_at.append(at)
            self.exit_acc.append(st)


def lift_reusing_components(dfa: ByteDFA, vocab, limits):
    """The lift of ``dfa`` with the copies of declared components taken from their lifts, or
    None when it has none (the caller lifts the whole DFA)."""
    if dfa.num_states < MIN_STATES or not _DECLARED:
        return None
    q_n = dfa.num_states
    owner = np.full(q_n, -1, dtype=np.int64)          # covered state -> its copy (an index)
    copies = []                                        # (part, phi, component state per row)
    live_d = dfa.table != DEAD
    for regex in _DECLARED:
        p = regex_to_byte_dfa(regex, timeout_s=limits.regex_timeout_s)
        if p.accepting[p.initial]:
            continue
        start_live = p.table[p.initial] != DEAD
        cands = np.nonzero((live_d == start_live).all(axis=1) & ~dfa.accepting & (owner < 0))[0]
        if not len(cands):
            continue
        key = (vocab.fingerprint, regex)
        part = _PARTS.get(key)
        if part is None:
            seen = (_SEEN.get(key) or 0) + 1
            _SEEN.put(key, seen)
            if seen < BUILD_AFTER:       # two lifts of the vocabulary: paid back only by a
                continue                 # process that compiles many structures (a server)
            part = _Part(regex, vocab, limits)
            _PARTS.put(key, part)
        for d in cands.tolist():
            phi = _copies(p, dfa, d)
            if phi is None:
                continue
            inner = np.nonzero(~p.accepting)[0]
            free = owner[phi[inner]] < 0
            owner[phi[inner[free]]] = len(copies)
            copies.append((part, phi))
    covered = np.nonzero(owner >= 0)[0]
    if not len(covered):
        return None
    fresh = np.nonzero(owner < 0)[0]
    w_nxt, _, w_rep = _lift(dfa, vocab, None, limits, starts=fresh)
    if len({id(c[0]) for c in copies}) > 1:
        return None                   # copies of two components: not combined yet
    part = copies[0][0]
    pstate = np.zeros(q_n, dtype=np.int64)             # covered state -> component state
    for i, (_, phi) in enumerate(copies):
        mine = (owner[phi] == i) & ~part.dfa.accepting
        pstate[phi[mine]] = np.nonzero(mine)[0]
    sig, ex_rows = _exits(dfa, vocab, part, copies, owner, covered, pstate)
    # a token's column: (its walk column, its component column, how it leaves the copies)
    u_w, u_p, m = w_nxt.shape[1], part.nxt.shape[1], len(ex_rows)
    _, _, pair = _group((w_rep + 1) * (u_p + 1) + (part.rep + 1), int((u_w + 1) * (u_p + 1)))
    cols, first, inv = _group(pair * (m + 1) + (sig + 1), int((pair.max() + 1) * (m + 1)))
    col_w, col_p, col_x = w_rep[first], part.rep[first], sig[first]
    nxt = np.full((q_n, len(cols)), -1, dtype=np.int32)
    if u_w:                           # else no token moves from the fresh states at all
        nxt[fresh] = np.where(col_w >= 0, w_nxt[:, np.maximum(col_w, 0)], -1)
    moves = part.nxt[pstate[covered]][:, np.maximum(col_p, 0)]          # (n_cov, U)
    phis = np.stack([phi for _, phi in copies])[owner[covered]]         # (n_cov, Qp)
    mapped = np.take_along_axis(phis, np.maximum(moves, 0).astype(np.int64), axis=1)
    cov = np.where((col_p[None, :] >= 0) & (moves >= 0), mapped, -1)
    if m:                             # where a token leaves a copy, the walk's answer instead
        x = ex_rows[np.maximum(col_x, 0)].T                                # (n_cov, U)
        cov = np.where((col_x[None, :] >= 0) & (x != -2), x, cov)
    nxt[covered] = cov
    rep = np.where((w_rep < 0) & (part.rep < 0) & (sig < 0), -1, inv).astype(np.int64)
    return nxt, None, rep


def _exits(dfa, vocab, part, copies, owner, covered, pstate):
    """Tokens that pass through the end of a copy with bytes left: each such token's exit
    signature (``sig``, -1 for the others) and per signature the state each covered row
    reaches (``ex_rows``, -2 where the token does not leave that copy there)."""
    v_n = len(part.rep)
    rows, tok, at, st = [], [], [], []
    for r, c in enumerate(covered.tolist()):           # all (state, exit token) pairs
        q = int(pstate[c])
        if len(part.exit_tok[q]):
            rows.append(np.full(len(part.exit_tok[q]), r))
            tok.append(part.exit_tok[q])
            at.append(part.exit_at[q])
            st.append(copies[owner[c]][1][part.exit_acc[q]])
    if not rows:
        return np.full(v_n, -1, dtype=np.int64), np.zeros((0, len(covered)), dtype=np.int64)
    rows, tok, at, st = (np.concatenate(x) for x in (rows, tok, at, st))
    bm = np.asarray(vocab.byte_matrix())
    end = np.asarray(vocab.token_lengths())[tok]
    out = st.copy()
    live = np.nonzero((st >= 0) & (at < end))[0]                  # pairs with bytes left
    j = at[live]
    while live.size:                                               # walked together, per byte
        check_clock()
        s = dfa.table[out[live], bm[tok[live], j]]
        out[live] = s
        j = j + 1
        more = (s >= 0) & (j < end[live])
        live, j = live[more], j[more]
    ex_tok = np.unique(tok)
    where = np.full(v_n, -1, dtype=np.int64)
    where[ex_tok] = np.arange(len(ex_tok))
    dense = np.full((len(ex_tok), len(covered)), -2, dtype=np.int64)
    dense[where[tok], rows] = out
    label, firsts = row_labels(dense)
    sig = np.full(v_n, -1, dtype=np.int64)
    sig[ex_tok] = label
    return sig, dense[firsts]


def _copies(part: ByteDFA, dfa: ByteDFA, start: int) -> np.ndarray | None:
    """``phi[q]``: the state of ``dfa`` that copies the component's state ``q``, walking both
    from (component initial, ``start``); None unless every state before an end has the same
    acceptance, the same dead bytes and matching moves (an end may go on: that is the exit)."""
    phi = np.full(part.num_states, -1, dtype=np.int64)
    phi[part.initial] = start
    stack = [part.initial]
    while stack:
        q = stack.pop()
        if part.accepting[q]:
            if (part.table[q] != DEAD).any():
                return None                                  # not prefix-free: no exits
            continue
        p = int(phi[q])
        if dfa.accepting[p]:
            return None
        a, b = part.table[q], dfa.table[p]
        if ((a == DEAD) != (b == DEAD)).any():
            return None
        live = a != DEAD
        for x, y in set(zip(a[live].tolist(), b[live].tolist())):
            if phi[x] < 0:
                phi[x] = y
                stack.append(x)
            elif phi[x] != y:
                return None
    return phi if (phi >= 0).all() else None
