"""Compile stage: a regex becomes a deterministic automaton over UTF-8 bytes.

Python's own parser (``re._parser``) reads the regex, so syntax and errors are exactly Python's;
we build a Thompson NFA over bytes (:mod:`.nfa`: code-point classes become UTF-8 byte ranges)
and determinise it by subset construction over byte classes. Time and state caps turn runaway
regexes (huge counted repetitions) into :class:`CompileLimitError` instead of a hang.

Why not outlines-core's ``Index``: with outlines-core 0.2.14, an ``Index`` over single-byte tokens
drops every transition from an accepting state into a non-accepting one (``(aa)?`` loses its
first ``a``; see tests/test_byte_dfa.py), and its determinisation runs for minutes on counted
alternations such as ``(a|\\\\b){0,20}``.
"""

from __future__ import annotations

import bisect
import re
import time
from dataclasses import dataclass

import numpy as np

from ..errors import CompileLimitError, RegexError
from . import native
from .clock import check_clock, clock_deadline, compile_clock
from .lru import LRU
from .nfa import _NFA, _Timeout

try:  # Python 3.11+
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_parse

DEAD = -1


@dataclass(frozen=True, eq=False)
class ByteDFA:
    """States ``0..Q-1``; ``table[q, b]`` is the next state or ``DEAD``."""

    table: np.ndarray      # (Q, 256) int32
    initial: int
    accepting: np.ndarray  # (Q,) bool

    @property
    def num_states(self) -> int:
        return self.table.shape[0]

    def run(self, data: bytes, state: int | None = None) -> int:
        """State after reading ``data`` (``DEAD`` if it falls off)."""
        q = self.initial if state is None else state
        for b in data:
            if q == DEAD:
                return DEAD
            q = int(self.table[q, b])
        return q

    def matches(self, data: bytes) -> bool:
        q = self.run(data)
        return q != DEAD and bool(self.accepting[q])


def check_regex_syntax(regex: str) -> None:
    """Reject what Python's ``re`` rejects, with the position and a caret."""
    try:
        re.compile(regex)
    except re.error as e:
        raise _syntax_error(regex, e) from None


def _parse(regex: str):
    """``re``'s parse tree; a syntax error as :func:`check_regex_syntax` words it. (What only
    ``re.compile`` rejects beyond the parser, such as variable-width look-behind, is refused
    later as not regular; compiling a 28k-character schema regex here cost 50 ms.)"""
    try:
        return sre_parse.parse(regex)
    except re.error as e:
        raise _syntax_error(regex, e) from None


def _syntax_error(regex: str, e: re.error) -> RegexError:
    pos = f" at position {e.pos}" if e.pos is not None else ""
    caret = f"\n  {regex}\n  {' ' * (e.pos or 0)}^" if e.pos is not None else ""
    return RegexError(f"invalid regex: {e.msg}{pos}{caret}")


# --- subset construction -------------------------------------------------------------------------

class TooManyStates(Exception):
    """Subset construction passed its state cap (callers word the error for their language)."""


def subset_construction(nfa, start: int, final: int, max_states: int) -> ByteDFA:
    """Subset construction over byte classes, then Moore minimisation. ``nfa`` has ``eps``,
    ``edges`` (``[(lo, hi, target)]`` per state) and ``deadline``.

    Per NFA state the successors are grouped by byte class once; a subset's row is the union of
    its members' groups, and the closure of a target set is memoised (the same sets recur), so
    the work is proportional to the edges of the subsets visited. Raises ``_Timeout`` past the
    deadline and :class:`TooManyStates` past ``max_states``."""
    bounds = byte_class_bounds(nfa.edges)
    k_n = len(bounds) - 1
    if native.LIB is not None:
        try:
            small, accepting = native.subset_construction(
                nfa.eps, nfa.edges, bounds, start, final, max_states,
                native.monotonic_deadline(nfa.deadline, clock_deadline()))
        except native.NativeTooManyStates:
            raise TooManyStates from None
        except native.NativeTimeout:
            check_clock()                # the compile's clock words it, if it was that one
            raise _Timeout from None
        return _minimal_over_classes(small, accepting, bounds)
    moves: list = [None] * len(nfa.eps)
    for q, row in enumerate(nfa.edges):
        mv: dict[int, list] = {}
        for lo, hi, tgt in row:
            for k in range(bisect.bisect_right(bounds, lo) - 1, bisect.bisect_right(bounds, hi)):
                mv.setdefault(k, []).append(tgt)
        moves[q] = mv
    eps = nfa.eps
    single: dict[int, frozenset] = {}

    def closure1(q: int) -> frozenset:
        hit = single.get(q)
        if hit is None:
            out, stack = {q}, [q]
            while stack:
                for r in eps[stack.pop()]:
                    if r not in out:
                        out.add(r)
                        stack.append(r)
            hit = single[q] = frozenset(out)
        return hit

    many: dict[frozenset, frozenset] = {}
    start_set = closure1(start)
    ids = {start_set: 0}
    order = [start_set]
    rows = []
    i = 0
    while i < len(order):
        if time.monotonic() > nfa.deadline:
            raise _Timeout
        check_clock()
        acc: dict[int, set] = {}
        for q in order[i]:
            for k, ts in moves[q].items():
                got = acc.get(k)
                if got is None:
                    acc[k] = set(ts)
                else:
                    got.update(ts)
        row = [DEAD] * k_n
        for k, ts in acc.items():
            ts = frozenset(ts)
            key = many.get(ts)
            if key is None:
                key = many[ts] = frozenset().union(*(closure1(r) for r in ts))
            j = ids.get(key)
            if j is None:
                if len(order) >= max_states:
                    raise TooManyStates
                j = ids[key] = len(order)
                order.append(key)
            row[k] = j
        rows.append(row)
        i += 1
    small = np.asarray(rows, dtype=np.int32).reshape(len(rows), k_n)
    table = np.repeat(small, np.diff(np.asarray(bounds)), axis=1)
    accepting = np.array([final in st for st in order], dtype=bool)
    return minimize(ByteDFA(table=np.ascontiguousarray(table), initial=0, accepting=accepting))


def byte_class_bounds(edges) -> list[int]:
    """Byte classes of an NFA (``edges[state] = [(lo, hi, target), ...]``), as sorted cut points
    from 0 to 256: bytes that no edge tells apart behave the same everywhere."""
    cuts = {0, 256}
    for row in edges:
        for lo, hi, _ in row:
            cuts.add(lo)
            cuts.add(hi + 1)
    return sorted(cuts)


def row_labels(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, first): equal rows get equal labels 0..m-1, and ``first[l]`` is a row labelled l.

    One 64-bit hash per row (an integer matrix-vector product), then the grouping is checked
    exactly against the rows (``np.unique(axis=0)``, which sorts whole rows, only on a collision).
    """
    n = rows.shape[0]
    if n <= 1:
        return np.zeros(n, dtype=np.int64), np.zeros(min(n, 1), dtype=np.int64)
    r = _hash_weights(rows.shape[1])
    with np.errstate(over="ignore"):
        h = (rows.astype(np.int64) + 1) @ r                            # wraps mod 2**64
    _, first, label = np.unique(h, return_index=True, return_inverse=True)
    label = label.reshape(-1)
    if not (rows == rows[first[label]]).all():                          # a collision: be exact
        _, first, label = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        label = label.reshape(-1)
    return label, first


_WEIGHTS = np.random.default_rng(0xB10C).integers(1, 2 ** 62, size=4096, dtype=np.int64)


def _hash_weights(n: int) -> np.ndarray:
    """Random odd-ish 64-bit weights for row hashing, fixed per process (a new generator per
    call cost more than the hash itself on the lift's many small levels)."""
    global _WEIGHTS
    if n > len(_WEIGHTS):
        _WEIGHTS = np.random.default_rng(0xB10C).integers(1, 2 ** 62, size=2 * n, dtype=np.int64)
    return _WEIGHTS[:n]


def _unique_rows(rows: np.ndarray) -> np.ndarray:
    """Labels of :func:`row_labels` alone."""
    return row_labels(rows)[0]


def moore_blocks(t: np.ndarray, accepting: np.ndarray) -> tuple[np.ndarray, int]:
    """Moore partition refinement of a (Q, K) table (``DEAD`` = -1): states with the same future
    get the same block. Returns (block of each state, number of blocks).

    Each round hashes every state's (block, successor blocks) row; rounds = the longest
    distinguishing suffix, so the per-round cost is what matters (one gather + one product)."""
    if native.LIB is not None:
        try:
            return native.moore(t, accepting, native.monotonic_deadline(clock_deadline()))
        except native.NativeTimeout:
            check_clock()
            raise
    q_n = t.shape[0]
    tp = np.where(t >= 0, t, q_n)                                      # dead -> a sentinel row
    block = accepting.astype(np.int64)
    n_blocks = len(np.unique(block))
    while True:
        check_clock()
        ext = np.append(block, -1)
        new, _ = row_labels(np.concatenate([block[:, None], ext[tp]], axis=1))
        n_new = int(new.max()) + 1 if q_n else 0
        if n_new == n_blocks:
            return new, n_new                                          # dense labels 0..n-1
        block, n_blocks = new, n_new


def minimize(dfa: ByteDFA) -> ByteDFA:
    """Moore partition refinement: merge states with the same future.

    Besides making everything downstream smaller, minimality gives each regex *one* state per
    future, which character counters rely on (a JSON string body has a single "between
    characters" state).
    """
    table = dfa.table
    _, first = row_labels(table.T)                                     # bytes alike everywhere
    block, n_blocks = moore_blocks(table[:, np.sort(first)], dfa.accepting)
    out, acc = quotient_table(block, n_blocks, table, dfa.accepting, dfa.initial)
    return ByteDFA(table=out, initial=0, accepting=acc)


def _minimal_over_classes(small: np.ndarray, accepting: np.ndarray, bounds) -> ByteDFA:
    """The minimal byte DFA of a (Q, K) table over byte classes (``bounds``: their cut points),
    minimised before its columns are widened to 256 bytes."""
    block, n_blocks = moore_blocks(small, accepting)
    out, acc = quotient_table(block, n_blocks, small, accepting, 0)
    table = np.repeat(out, np.diff(np.asarray(bounds)), axis=1)
    return ByteDFA(table=np.ascontiguousarray(table), initial=0, accepting=acc)


def quotient_table(block: np.ndarray, n_blocks: int, t: np.ndarray, accepting: np.ndarray,
                   initial: int) -> tuple[np.ndarray, np.ndarray]:
    """The table of ``t`` (-1 dead) with states merged into their blocks, and its accepting
    flags, numbered breadth first from the initial state's block (columns in order). The
    numbering depends on the language only, not on how the automaton was built (the C and
    Python paths build different unminimised DFAs), so every process decodes alike."""
    out = np.full((n_blocks, t.shape[1]), DEAD, dtype=np.int32)
    out[block] = np.where(t >= 0, block[np.maximum(t, 0)], DEAD)
    acc = np.zeros(n_blocks, dtype=bool)
    acc[block] = accepting
    rank = breadth_first_rank(out, int(block[initial]))
    res = np.full_like(out, DEAD)
    res[rank] = np.where(out >= 0, rank[np.maximum(out, 0)], DEAD)
    res_acc = np.zeros(n_blocks, dtype=bool)
    res_acc[rank] = acc
    return res, res_acc


def breadth_first_rank(t: np.ndarray, initial: int) -> np.ndarray:
    """Each state's place in a breadth-first walk from ``initial`` (successors in column
    order); states it never reaches come last, in index order."""
    if native.LIB is not None:
        return native.bfs_rank(t, initial)
    n = t.shape[0]
    rank = np.full(n, -1, dtype=np.int64)
    rank[initial] = 0
    seen, frontier = 1, np.array([initial])
    while frontier.size:
        succ = t[frontier].reshape(-1)
        succ = succ[succ >= 0]
        succ = succ[rank[succ] < 0]
        if not succ.size:
            break
        _, first = np.unique(succ, return_index=True)
        frontier = succ[np.sort(first)]
        rank[frontier] = np.arange(seen, seen + len(frontier))
        seen += len(frontier)
    rest = np.nonzero(rank < 0)[0]
    rank[rest] = np.arange(seen, seen + len(rest))
    return rank


def build_byte_dfa(regex: str, *, timeout_s: float = 10.0, max_states: int = 200_000) -> ByteDFA:
    """Compile ``regex`` (whole-string match) to a byte DFA, uncached."""
    if native.LIB is not None:
        dfa = _native_byte_dfa(regex, timeout_s, max_states)
        if dfa is not None:
            return dfa
    parsed = _parse(regex)
    nfa = _NFA(time.monotonic() + timeout_s, max_states)
    s, t = nfa.state(), nfa.state()
    try:
        with compile_clock(timeout_s):       # minimisation too, not only the construction
            nfa.build(list(parsed), s, t, parsed.state.flags)
            return subset_construction(nfa, s, t, max_states)
    except TooManyStates:
        raise _too_many_states(max_states) from None
    except _Timeout:
        raise _too_slow(regex, timeout_s) from None
    except RecursionError:
        raise _too_deep(regex) from None


def _native_byte_dfa(regex: str, timeout_s: float, max_states: int) -> ByteDFA | None:
    """The C front end's DFA of ``regex`` (None: a regex it leaves to the Python path)."""
    try:
        with compile_clock(timeout_s):
            deadline = native.monotonic_deadline(clock_deadline())
            got = native.regex_dfa(regex, max_states, deadline)
            if got is None:
                return None
            return _minimal_over_classes(*got)
    except native.NativeTooManyStates:
        raise _too_many_states(max_states) from None
    except native.NativeTimeout:
        check_clock()                    # an outer compile's clock words it, if it was that one
        raise _too_slow(regex, timeout_s) from None
    except RecursionError:
        raise _too_deep(regex) from None


def _too_many_states(max_states: int) -> CompileLimitError:
    return CompileLimitError(
        f"the regex's automaton passes {max_states:,} states; raise "
        "CompileLimits.max_states or simplify the regex", limit="max_states", value=max_states)


def _too_slow(regex: str, timeout_s: float) -> CompileLimitError:
    return CompileLimitError(
        f"compiling the regex took longer than {timeout_s:g} s and was stopped: {_short(regex)}; "
        "raise CompileLimits.regex_timeout_s or simplify it", limit="regex_timeout_s",
        value=timeout_s)


def _too_deep(regex: str) -> CompileLimitError:
    return CompileLimitError(f"the regex nests too deeply: {_short(regex)}", limit="nesting")


def _short(regex: str, n: int = 120) -> str:
    return regex if len(regex) <= n else regex[:n] + "..."


_CACHE = LRU(1024)


def regex_to_byte_dfa(regex: str, *, timeout_s: float = 10.0, max_states: int = 200_000) -> ByteDFA:
    """Compile ``regex`` (whole-string match) to a byte DFA. Cached per regex string."""
    return _CACHE.get_or_build(regex, lambda: build_byte_dfa(regex, timeout_s=timeout_s,
                                                             max_states=max_states))
