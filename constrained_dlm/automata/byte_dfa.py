"""Compile stage: a regex becomes a deterministic automaton over UTF-8 bytes.

Python's own parser (``re._parser``) reads the regex, so syntax and errors are exactly Python's;
we build a Thompson NFA over bytes (code-point classes become UTF-8 byte ranges) and determinise it
by subset construction over byte classes. Time and state caps turn runaway regexes (huge counted
repetitions) into :class:`CompileLimitError` instead of a hang.

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
from .clock import check_clock, compile_clock
from .lru import LRU

try:  # Python 3.11+
    from re import _constants as sre_c
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as sre_c
    import sre_parse

DEAD = -1
MAX_CODEPOINT = 0x10FFFF


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


# --- code points -> UTF-8 byte ranges ------------------------------------------------------------

def _utf8_sequences(lo: int, hi: int):
    """Split [lo, hi] into lists of per-byte ranges, each list one UTF-8 byte-range sequence."""
    if lo > hi:
        return
    if lo <= 0xDFFF and hi >= 0xD800:           # surrogates are not encodable
        yield from _utf8_sequences(lo, 0xD7FF)
        yield from _utf8_sequences(0xE000, hi)
        return
    for mx in (0x7F, 0x7FF, 0xFFFF):
        if lo <= mx < hi:
            yield from _utf8_sequences(lo, mx)
            yield from _utf8_sequences(mx + 1, hi)
            return
    if hi <= 0x7F:
        yield [(lo, hi)]
        return
    for i in range(1, 4):
        m = (1 << (6 * i)) - 1
        if lo & ~m != hi & ~m:
            if lo & m != 0:
                yield from _utf8_sequences(lo, lo | m)
                yield from _utf8_sequences((lo | m) + 1, hi)
                return
            if hi & m != m:
                yield from _utf8_sequences(lo, (hi & ~m) - 1)
                yield from _utf8_sequences(hi & ~m, hi)
                return
    a, b = chr(lo).encode(), chr(hi).encode()
    yield list(zip(a, b))


def _normalize(ranges):
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _negate(ranges):
    out, prev = [], 0
    for lo, hi in _normalize(ranges):
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_CODEPOINT:
        out.append((prev, MAX_CODEPOINT))
    return out


_CATEGORIES = {  # ASCII meanings: stricter than Python's Unicode ones, so output still matches
    sre_c.CATEGORY_DIGIT: [(0x30, 0x39)],
    sre_c.CATEGORY_WORD: [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    sre_c.CATEGORY_SPACE: [(0x09, 0x0D), (0x20, 0x20)],
}
_CATEGORIES[sre_c.CATEGORY_NOT_DIGIT] = _negate(_CATEGORIES[sre_c.CATEGORY_DIGIT])
_CATEGORIES[sre_c.CATEGORY_NOT_WORD] = _negate(_CATEGORIES[sre_c.CATEGORY_WORD])
_CATEGORIES[sre_c.CATEGORY_NOT_SPACE] = _negate(_CATEGORIES[sre_c.CATEGORY_SPACE])


# --- Thompson NFA over bytes ---------------------------------------------------------------------

class _NFA:
    """Thompson NFA over bytes, wired from ``re``'s parse tree.

    Equal sub-sequences wired to the same target state are wired once and shared (keyed by a
    structural id of the parse subtree): a regex is a tree, so the JSON compiler's in-order
    optional members (``(A(, B)?|B)``) write each member twice, and nested objects doubled at
    every level; shared, the subset construction no longer builds those copies (issue 25)."""

    def __init__(self, deadline: float, max_states: int):
        self.eps: list[list[int]] = []
        self.edges: list[list[tuple[int, int, int]]] = []   # (byte_lo, byte_hi, target)
        self.deadline = deadline
        self.max_states = max_states
        self._ids: dict = {}          # structural form of a parse subtree -> small int
        self._seqs: dict = {}         # id(SubPattern) -> (SubPattern, its structural id)
        self._wired: dict = {}        # (suffix id, target, flags) -> entry state
        self._size: dict = {}         # structural id -> parse items in it

    def _intern(self, form, size: int = 1) -> int:
        i = self._ids.setdefault(form, len(self._ids))
        self._size[i] = size
        return i

    def _seq_id(self, p) -> int:
        hit = self._seqs.get(id(p))
        if hit is None:
            hit = self._seqs[id(p)] = (p, self._suffix_ids(list(p))[0])
        return hit[1]

    def _suffix_ids(self, items) -> list[int]:
        """Structural id of ``items[k:]`` for every k (plus the empty suffix at the end)."""
        out = [0] * (len(items) + 1)
        out[-1] = nxt = self._intern(("",), 0)
        size = self._size
        for k in range(len(items) - 1, -1, -1):
            op, av = items[k]
            if op is sre_c.SUBPATTERN:
                kids = (self._seq_id(av[3]),)
                form = (op, av[1], av[2], kids[0])
            elif op is sre_c.BRANCH:
                kids = tuple(self._seq_id(a) for a in av[1])
                form = (op, kids)
            elif op in _REPEATS:
                kids = (self._seq_id(av[2]),)
                form = (op, av[0], av[1], kids[0])
            else:
                kids = ()
                form = (op, tuple(av)) if op is sre_c.IN else (op, av)
            n = 1 + sum(size[c] for c in kids)
            try:
                item = self._intern(form, n)
            except TypeError:                      # unhashable: never shared
                item = self._intern(("unique", len(self._ids)), n)
            out[k] = nxt = self._intern((item, nxt), n + size[nxt])
        return out

    def state(self) -> int:
        if len(self.eps) >= self.max_states:
            raise CompileLimitError(
                f"the regex needs more than {self.max_states:,} NFA states; raise "
                "CompileLimits.max_states or shorten counted repetitions", limit="max_states",
                value=self.max_states)
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def ranges(self, cps, s: int, t: int) -> None:
        for seq in (x for lo, hi in _normalize(cps) for x in _utf8_sequences(lo, hi)):
            cur = s
            for k, (blo, bhi) in enumerate(seq):
                nxt = t if k == len(seq) - 1 else self.state()
                self.edges[cur].append((blo, bhi, nxt))
                cur = nxt

    def build(self, items, s: int, t: int, flags: int) -> None:
        """Wire the parsed sequence ``items`` between states s and t."""
        if time.monotonic() > self.deadline:
            raise _Timeout
        check_clock()
        if not items:
            self.eps[s].append(t)
            return
        suffix = self._suffix_ids(items)
        cur = s
        for k, (op, av) in enumerate(items):
            key = (suffix[k], t, flags)
            shared = self._wired.get(key)
            if shared is not None:
                self.eps[cur].append(shared)
                return
            if not k and self._size[suffix[0]] >= SHARE_MIN_ITEMS:
                cur = self.state()             # s may have other ways out: enter by a new state
                self.eps[s].append(cur)
            if cur != s:         # a state of ours with no other way out: safe to share
                self._wired[key] = cur
            nxt = t if k == len(items) - 1 else self.state()
            self.item(op, av, cur, nxt, flags, own=cur != s)
            cur = nxt

    def item(self, op, av, s: int, t: int, flags: int, own: bool = False) -> None:
        """Wire one parse item between s and t (``own``: s has no other way out)."""
        ignore = flags & re.IGNORECASE
        if op is sre_c.LITERAL:
            self.ranges(_case([(av, av)], ignore), s, t)
        elif op is sre_c.NOT_LITERAL:
            self.ranges(_negate(_case([(av, av)], ignore)), s, t)
        elif op is sre_c.ANY:
            self.ranges([(0, MAX_CODEPOINT)] if flags & re.DOTALL else _negate([(10, 10)]), s, t)
        elif op is sre_c.IN:
            self.ranges(_class(av, ignore), s, t)
        elif op is sre_c.SUBPATTERN:
            _, add, sub, p = av
            self.build(list(p), s, t, flags | add & ~sub)
        elif op is sre_c.BRANCH:
            for alt in av[1]:
                a = self.state()
                self.eps[s].append(a)
                self.build(list(alt), a, t, flags)
        elif op in _REPEATS:
            lo, hi, p = av
            body = list(p)
            cur = s
            for _ in range(lo):
                nxt = self.state()
                self.build(body, cur, nxt, flags)
                cur = nxt
            if hi == sre_c.MAXREPEAT:
                loop = cur       # body*: each pass ends where it began (X(, X)* shares its X)
                if cur == s and not own:
                    loop = self.state()
                    self.eps[cur].append(loop)
                self.build(body, loop, loop, flags)
                self.eps[loop].append(t)
            else:
                self.eps[cur].append(t)
                for i in range(hi - lo):
                    if i == hi - lo - 1:             # the last copy ends at t itself (shareable)
                        self.build(body, cur, t, flags)
                        break
                    nxt = self.state()
                    self.build(body, cur, nxt, flags)
                    self.eps[nxt].append(t)
                    cur = nxt
        elif op is sre_c.AT and av in (sre_c.AT_BEGINNING_STRING, sre_c.AT_END_STRING):
            raise RegexError("anchors (\\A, \\Z) are not supported: the whole text always matches")
        elif op is sre_c.AT:
            raise RegexError("anchors (^, $, \\b) are not supported inside a regex hole: the "
                             "regex always matches the whole hole text, so leave them out")
        else:
            name = str(op).lower()
            raise RegexError(f"regex construct {name!r} (lookaround, backreference, conditional) "
                             "is not regular and cannot be compiled to an automaton")


SHARE_MIN_ITEMS = 8    # smaller sub-sequences are rewired rather than entered by an extra state
_REPEATS = tuple(op for op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT,
                               getattr(sre_c, "POSSESSIVE_REPEAT", None)) if op is not None)


def _case(ranges, ignore):
    if not ignore:
        return ranges
    out = list(ranges)
    for lo, hi in ranges:
        for c in range(lo, min(hi, lo + 512) + 1):
            for d in {chr(c).lower(), chr(c).upper()}:
                if len(d) == 1:
                    out.append((ord(d), ord(d)))
    return out


def _class(items, ignore):
    ranges, negate = [], False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            ranges.append((av, av))
        elif op is sre_c.RANGE:
            ranges.append(av)
        elif op is sre_c.CATEGORY:
            ranges.extend(_CATEGORIES[av])
        else:
            raise RegexError(f"character class item {op} is not supported")
    ranges = _case(ranges, ignore)
    return _negate(ranges) if negate else ranges


class _Timeout(Exception):
    pass


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
    # renumber so the initial state is 0 and order follows first appearance
    remap = _first_seen_order(block, dfa.initial, n_blocks)
    out = np.full((n_blocks, 256), DEAD, dtype=np.int32)
    out[remap] = np.where(table >= 0, remap[np.maximum(table, 0)], DEAD)
    acc = np.zeros(n_blocks, dtype=bool)
    acc[remap] = dfa.accepting
    return ByteDFA(table=out, initial=0, accepting=acc)


def _first_seen_order(block: np.ndarray, initial: int, n_blocks: int) -> np.ndarray:
    """Renumber blocks so the initial state's is 0 and the rest follow first appearance."""
    order = np.concatenate([[initial], np.arange(len(block))])
    _, first = np.unique(block[order], return_index=True)
    rank = np.empty(n_blocks, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_blocks)
    return rank[block]


def build_byte_dfa(regex: str, *, timeout_s: float = 10.0, max_states: int = 200_000) -> ByteDFA:
    """Compile ``regex`` (whole-string match) to a byte DFA, uncached."""
    parsed = _parse(regex)
    nfa = _NFA(time.monotonic() + timeout_s, max_states)
    s, t = nfa.state(), nfa.state()
    try:
        with compile_clock(timeout_s):       # minimisation too, not only the construction
            nfa.build(list(parsed), s, t, parsed.state.flags)
            return subset_construction(nfa, s, t, max_states)
    except TooManyStates:
        raise CompileLimitError(
            f"the regex's automaton passes {max_states:,} states; raise "
            "CompileLimits.max_states or simplify the regex", limit="max_states",
            value=max_states) from None
    except _Timeout:
        raise CompileLimitError(
            f"compiling the regex took longer than {timeout_s:g} s and was stopped: {_short(regex)}; "
            "raise CompileLimits.regex_timeout_s or simplify it", limit="regex_timeout_s",
            value=timeout_s) from None
    except RecursionError:
        raise CompileLimitError(f"the regex nests too deeply: {_short(regex)}", limit="nesting") from None


def _short(regex: str, n: int = 120) -> str:
    return regex if len(regex) <= n else regex[:n] + "..."


_CACHE = LRU(1024)


def regex_to_byte_dfa(regex: str, *, timeout_s: float = 10.0, max_states: int = 200_000) -> ByteDFA:
    """Compile ``regex`` (whole-string match) to a byte DFA. Cached per regex string."""
    return _CACHE.get_or_build(regex, lambda: build_byte_dfa(regex, timeout_s=timeout_s,
                                                             max_states=max_states))
