"""Compile stage: every token of the vocabulary walked through a byte DFA from every state.

One walk down the vocabulary's byte trie serves all states at once; prefixes the DFA cannot
tell apart are merged on the way (see :func:`_lift`). :mod:`.automaton` groups the result into
token classes and trims it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import CompileLimitError
from .byte_dfa import DEAD, ByteDFA, regex_to_byte_dfa, row_labels
from . import native
from .clock import check_clock, clock_deadline
from .lru import LRU

TRIE_DEPTH = 1000   # trie levels; bytes past this (no real token) are walked token by token
_TRIES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class _Trie:
    """The vocabulary's tokens as a byte trie, one level per byte position (built once).

    Node ``i`` at depth ``j`` spells ``parent[j][i]``'s bytes + ``byte[j][i]``; ``end_tok[j]``
    are the tokens that end at depth ``j``, at nodes ``end_node[j]``. Tokens longer than
    ``TRIE_DEPTH`` keep the rest of their bytes in ``deep_bytes`` (padded with 256).
    """

    parent: list
    byte: list
    end_tok: list             # per level, sorted by node
    end_node: list
    child_start: list         # per level: node i of the level above has children
    end_start: list           # child_start[j][i]:child_start[j][i+1]; its tokens likewise
    deep_tok: np.ndarray
    deep_node: np.ndarray
    deep_bytes: np.ndarray
    size: int


def _vocab_trie(vocab) -> _Trie:
    trie = _TRIES.get(vocab)
    if trie is not None:
        return trie
    lengths = np.asarray(vocab.token_lengths()).astype(np.int64)
    bm = np.asarray(vocab.byte_matrix())
    depth = min(TRIE_DEPTH, int(lengths.max(initial=0)))
    prev = np.zeros(len(lengths), dtype=np.int64)
    parent, byte, end_tok, end_node, child_start, end_start = [], [], [], [], [], []
    n_prev = 1
    for j in range(depth):
        on = np.nonzero(lengths > j)[0]
        uk, inv = np.unique(prev[on] * 257 + bm[on, j], return_inverse=True)
        inv = inv.reshape(-1)
        parent.append(uk // 257)
        byte.append((uk % 257).astype(np.int64))
        child_start.append(np.searchsorted(parent[-1], np.arange(n_prev + 1)))
        ends = lengths[on] == j + 1
        order = np.argsort(inv[ends], kind="stable")
        end_tok.append(on[ends][order])
        end_node.append(inv[ends][order])
        end_start.append(np.searchsorted(end_node[-1], np.arange(len(uk) + 1)))
        prev[on] = inv
        n_prev = len(uk)
    deep = np.nonzero(lengths > depth)[0]
    deep_bytes = bm[deep, depth:int(lengths.max(initial=0))].astype(np.int64)
    trie = _Trie(parent, byte, end_tok, end_node, child_start, end_start, deep, prev[deep],
                 deep_bytes, len(lengths))
    _TRIES[vocab] = trie
    return trie


def warm_vocabulary(vocab) -> None:
    """Build the vocabulary's token trie now (about 0.5 s at 128k tokens) rather than on the
    first compile: model loaders and long-running servers call this once. Also computes the
    vocabulary's fingerprint (the cache key, about 0.2 s at 128k)."""
    _vocab_trie(vocab)
    vocab.fingerprint


def _lift(dfa: ByteDFA, vocab, inc_table: np.ndarray | None, limits, starts=None):
    """Every token from every state: (Q, U) next states (-1 dead), (Q, U) counter increments
    (or None), and (V,) the column of each token (-1: dead everywhere or spells nothing).
    ``limits`` gives ``max_lift_work``; ``starts`` (an array of states) walks from those only,
    and the rows are theirs.

    The walk goes down the vocabulary's byte trie, but two prefixes are kept apart only while
    they can still behave differently: bytes the DFA never tells apart are one class, and
    prefixes that take *every* state to the same place (same counter too) are merged, because
    every continuation then treats them alike. A JSON string automaton's 128k tokens collapse
    to a few hundred walked prefixes; prefixes dead in every state are dropped. Cost: the trie's
    nodes (a few gathers each) plus states x merged prefixes.
    """
    trie = _vocab_trie(vocab)
    q_n = dfa.num_states
    table = dfa.table if inc_table is None else np.concatenate([dfa.table, inc_table], axis=0)
    byte_cls, _ = row_labels(table.T)                                  # (256,) byte -> class
    k_n = int(byte_cls.max()) + 1
    byte_cls = np.append(byte_cls, byte_cls[255])        # the trie's pad byte 256 reads as 255
    dead = q_n
    ext = np.full((q_n + 1, 257), dead, dtype=np.int32)   # row `dead` absorbs; column 256 = pad
    ext[:q_n, :256] = np.where(dfa.table == DEAD, dead, dfa.table)
    ext[:, 256] = np.arange(q_n + 1)
    inc_ext = None
    if inc_table is not None:
        inc_ext = np.zeros((q_n + 1, 257), dtype=np.int32)
        inc_ext[:q_n, :256] = inc_table
    starts = np.arange(q_n) if starts is None else np.asarray(starts)
    if native.LIB is not None and not trie.deep_tok.size:
        return _native_lift(vocab, trie, ext, inc_ext, byte_cls, starts, q_n, limits)
    cur = starts.astype(np.int32)[None, :]              # per live prefix: state after it, per start
    acc = np.zeros_like(cur) if inc_ext is not None else None
    cols, accs, toks, tok_col = [], [], [], []
    n_cols = [0]

    def emit(tok, pre, states, counts):
        if not tok.size:
            return
        uniq, _, inv = _group(pre, len(states))
        base = n_cols[0]
        n_cols[0] += len(uniq)
        cols.append(states[uniq])
        if counts is not None:
            accs.append(counts[uniq])
        toks.append(tok)
        tok_col.append(inv.reshape(-1) + base)

    alive_nodes = np.zeros(1, dtype=np.int64)          # live nodes of the level above, sorted
    alive_pre = np.zeros(1, dtype=np.int64)            # and their live prefixes
    node_pre = None                                    # the same, dense, after a dense level
    for j in range(len(trie.parent)):
        check_clock()
        starts_j = trie.child_start[j]
        sparse = len(alive_nodes) * SPARSE_BELOW < len(starts_j) - 1
        if sparse:
            # few live nodes (a walk from a few states): visit their children only
            lo = starts_j[alive_nodes]
            n = starts_j[alive_nodes + 1] - lo
            on, pre_on = _ranges(lo, n), np.repeat(alive_pre, n)
        else:
            if node_pre is None:
                node_pre = np.full(len(starts_j) - 1, -1, dtype=np.int64)
                node_pre[alive_nodes] = alive_pre
            pre = node_pre[trie.parent[j]]
            on = np.nonzero(pre >= 0)[0]
            pre_on = pre[on]
        if not on.size:
            alive_nodes = on
            break
        key = pre_on * k_n + byte_cls[trie.byte[j][on]]
        _, first, inv = _group(key, len(cur) * k_n)
        if len(first) * q_n > limits.max_lift_work:
            raise CompileLimitError(
                f"lifting a {q_n}-state automaton walks {len(first):,} distinct token prefixes "
                f"at byte {j + 1} ({len(first) * q_n:,} > {limits.max_lift_work:,} state-prefix "
                "pairs); raise CompileLimits.max_lift_work", limit="max_lift_work",
                value=len(first) * q_n)
        src, byte = pre_on[first], trie.byte[j][on[first]][:, None]
        new = ext[cur[src], byte]                                          # (P, Q)
        new_acc = acc[src] + inc_ext[cur[src], byte] if acc is not None else None
        label, keep = row_labels(new if acc is None else np.concatenate([new, new_acc], axis=1))
        new = new[keep]
        new_acc = new_acc[keep] if acc is not None else None
        alive = (new != dead).any(axis=1)
        renum = np.where(alive, np.cumsum(alive) - 1, -1)
        new_pre = renum[label[inv.reshape(-1)]]
        live = new_pre >= 0
        alive_nodes, alive_pre = on[live], new_pre[live]
        cur, acc = new[alive], (new_acc[alive] if acc is not None else None)
        if sparse:
            ends = trie.end_start[j]
            lo = ends[alive_nodes]
            n = ends[alive_nodes + 1] - lo
            emit(trie.end_tok[j][_ranges(lo, n)], np.repeat(alive_pre, n), cur, acc)
            node_pre = None                          # rebuilt by a dense level if one comes
        else:
            node_pre = np.full(len(trie.parent[j]), -1, dtype=np.int64)
            node_pre[on] = new_pre
            end = node_pre[trie.end_node[j]]
            ok = end >= 0
            emit(trie.end_tok[j][ok], end[ok], cur, acc)
    else:
        if trie.deep_tok.size:                       # long tokens: the rest of each, one by one
            n_last = len(trie.end_start[-1]) - 1 if trie.end_start else 1
            dense = np.full(n_last, -1, dtype=np.int64)
            dense[alive_nodes] = alive_pre
            pre = dense[trie.deep_node]
            ok = pre >= 0
            st = cur[pre[ok]]
            ac = acc[pre[ok]] if acc is not None else None
            rest = trie.deep_bytes[ok]
            for j in range(rest.shape[1]):
                b = rest[:, j][:, None]
                if ac is not None:
                    ac = ac + inc_ext[st, b]
                st = ext[st, b]
            idx = np.arange(len(st))
            emit(trie.deep_tok[ok], idx, st, ac)
    q_cols = np.concatenate(cols) if cols else np.zeros((0, len(starts)), dtype=np.int32)
    nxt = np.where(q_cols == dead, -1, q_cols).T.astype(np.int32)       # (Q, U)
    cnt = None
    if inc_ext is not None:
        a = np.concatenate(accs) if accs else np.zeros((0, len(starts)), dtype=np.int32)
        cnt = np.where(q_cols == dead, 0, a).T.astype(np.int32)
    token_rep = np.full(trie.size, -1, dtype=np.int64)
    if toks:
        token_rep[np.concatenate(toks)] = np.concatenate(tok_col)
    return nxt, cnt, token_rep


def _native_lift(vocab, trie, ext, inc_ext, byte_cls, starts, q_n, limits):
    """:func:`_lift` in C (``_native_lift.h``): the same walk, depth first."""
    flat = _FLAT.get(vocab)
    if flat is None:
        flat = _FLAT[vocab] = native.flat_trie(trie)
    try:
        return native.lift(flat, ext, inc_ext, byte_cls, starts, limits.max_lift_work,
                           native.monotonic_deadline(clock_deadline()))
    except native.NativeLiftWork as e:
        depth, n = e.args
        raise CompileLimitError(
            f"lifting a {q_n}-state automaton walks {n:,} distinct token prefixes "
            f"at byte {depth + 1} ({n * len(starts):,} > {limits.max_lift_work:,} state-prefix "
            "pairs); raise CompileLimits.max_lift_work", limit="max_lift_work",
            value=n * len(starts)) from None
    except native.NativeTimeout:
        check_clock()
        raise


_FLAT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
SPARSE_BELOW = 8      # visit children of live nodes when they are under 1/8 of their level


def _ranges(lo: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``lo[0]..lo[0]+n[0]-1, lo[1]..``: the indices of the ranges, concatenated."""
    total = int(n.sum())
    return np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(total)


def _group(key: np.ndarray, size: int):
    """``np.unique(key, return_index=True, return_inverse=True)`` for keys in ``0..size-1``,
    in O(len + size) instead of a sort when ``size`` is not much larger than ``len(key)`` (the
    lift groups the nodes of every trie level; sorting them was a third of its time). ``first``
    holds *an* occurrence of each key, not necessarily the first: callers only need one."""
    if size > 4 * len(key) + 1024:
        u, first, inv = np.unique(key, return_index=True, return_inverse=True)
        return u, first, inv.reshape(-1)
    present = np.zeros(size, dtype=bool)
    present[key] = True
    rank = np.cumsum(present) - 1
    where = np.empty(size, dtype=np.int64)
    where[key] = np.arange(len(key))
    u = np.nonzero(present)[0]
    return u, where[u], rank[key]


# --- reusing the lift of a known tail --------------------------------------------------------------

REUSE_MIN_COLUMNS = 64      # walked prefixes of a tail's lift worth reusing (strings, numbers)
MAX_TAIL_CHARS = 400        # value regexes, not whole structures
_TAIL_LIFTS = LRU(256)
_TAIL_SEEN = LRU(4096)      # (vocabulary fingerprint, tail regex) -> (byte DFA, nxt, token_rep)
_META = set(".^$*+?{}[]|()\\")


def lift_reusing_tail(regex: str, dfa: ByteDFA, vocab, limits):
    """The lift of ``dfa`` (the byte DFA of ``regex``) when ``regex`` is ``LIT TAIL`` or
    ``(LIT TAIL)?`` with ``LIT`` literal text, reusing the cached lift of ``TAIL``; None when it
    is not of that shape (the caller lifts the whole DFA).

    A JSON object's optional property is a hole ``(, "key": VALUE)?``: a new regex per key, but
    its value part is the same few regexes everywhere. The states of ``dfa`` from where ``LIT``
    leads are checked to be an exact copy of the tail's DFA (same acceptance and dead bytes,
    state for state), so their token moves are the tail's, mapped; only the few states on the
    literal walk the vocabulary, and from them only tokens that spell the literal survive. At
    128k tokens a string-valued property goes from ~17 ms to a few ms."""
    split = _literal_head(regex)
    if split is None:
        return None
    head, tail = split
    d = dfa.run(head.encode())
    if d == DEAD or len(tail) > MAX_TAIL_CHARS:
        return None
    key = (vocab.fingerprint, tail)
    if _TAIL_LIFTS.get(key) is None and not _TAIL_SEEN.get(key):
        _TAIL_SEEN.put(key, True)    # lifted separately only once a second hole ends with it
        return None
    t_dfa, t_nxt, t_rep = _tail_lift(tail, vocab, limits)
    if t_nxt.shape[1] < REUSE_MIN_COLUMNS:
        return None                # a small tail (true|false): walking everything is cheaper
    phi = _embedding(t_dfa, dfa, d)
    if phi is None:
        return None
    known = np.zeros(dfa.num_states, dtype=bool)
    known[phi] = True
    fresh = np.nonzero(~known)[0]
    w_nxt, _, w_rep = _lift(dfa, vocab, None, limits, starts=fresh)
    # a token's column: the pair (its column from the fresh states, its column in the tail)
    u_t = t_nxt.shape[1]
    key = (w_rep + 1) * (u_t + 1) + (t_rep + 1)
    cols, _, inv = _group(key, int((w_nxt.shape[1] + 1) * (u_t + 1)))
    col_w, col_t = cols // (u_t + 1) - 1, cols % (u_t + 1) - 1
    nxt = np.full((dfa.num_states, len(cols)), -1, dtype=np.int32)
    nxt[fresh] = np.where(col_w >= 0, w_nxt[:, np.maximum(col_w, 0)], -1)
    mapped = np.where(t_nxt >= 0, phi[np.maximum(t_nxt, 0)], -1)           # tail -> our states
    nxt[phi] = np.where(col_t >= 0, mapped[:, np.maximum(col_t, 0)], -1)
    rep = np.where(key == 0, -1, inv.reshape(-1)).astype(np.int64)           # 0: dead in both
    return nxt, None, rep


def _tail_lift(tail: str, vocab, limits):
    key = (vocab.fingerprint, tail)
    hit = _TAIL_LIFTS.get(key)
    if hit is None:
        t_dfa = regex_to_byte_dfa(tail, timeout_s=limits.regex_timeout_s)
        nxt, _, rep = _lift(t_dfa, vocab, None, limits)
        hit = (t_dfa, nxt, rep)
        _TAIL_LIFTS.put(key, hit)
    return hit


def _literal_head(regex: str) -> tuple[str, str] | None:
    """(literal text, rest) of ``LIT REST`` or ``(LIT REST)?``; a wrong guess is harmless (the
    embedding check refuses it), so this only reads characters, it does not parse."""
    s = regex
    if s.startswith("(") and s.endswith(")?") and _one_group(s[:-1]):
        s = s[1:-2]
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and not s[i + 1].isalnum():
            ch, step = s[i + 1], 2
        elif c not in _META:
            ch, step = c, 1
        else:
            break
        if i + step < len(s) and s[i + step] in "*+?{":
            break                                           # a quantified character
        out.append(ch)
        i += step
    if not out or i == len(s):
        return None
    return "".join(out), s[i:]


def _one_group(s: str) -> bool:
    """Whether ``s`` is one parenthesised group: its first '(' closes at its last character."""
    depth, i, in_class = 0, 0, False
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if s[i + 1:i + 2] == "]":
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
        i += 1
    return False


def _embedding(tail: ByteDFA, dfa: ByteDFA, start: int) -> np.ndarray | None:
    """``phi[q]``: the state of ``dfa`` that the tail's state ``q`` is a copy of, walking both
    from (tail initial, ``start``) on every byte; None where they differ anywhere."""
    phi = np.full(tail.num_states, -1, dtype=np.int64)
    phi[tail.initial] = start
    stack = [tail.initial]
    while stack:
        check_clock()
        q = stack.pop()
        p = int(phi[q])
        if tail.accepting[q] != dfa.accepting[p]:
            return None
        a, b = tail.table[q], dfa.table[p]
        if ((a == DEAD) != (b == DEAD)).any():
            return None
        live = a != DEAD
        nq, np_ = a[live], b[live]
        seen = phi[nq]
        if ((seen >= 0) & (seen != np_)).any():
            return None
        new = seen < 0
        for x, y in set(zip(nq[new].tolist(), np_[new].tolist())):
            if phi[x] >= 0 and phi[x] != y:
                return None
            if phi[x] < 0:
                phi[x] = y
                stack.append(x)
    if (phi < 0).any():                       # states the walk never reached (not minimal)
        return None
    return phi
