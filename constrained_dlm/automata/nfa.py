"""Compile stage: a regex's parse tree wired into a Thompson NFA over UTF-8 bytes.

Code-point classes become UTF-8 byte-range sequences; equal sub-sequences that lead to the same
state are wired once and shared (see :class:`_NFA`). :mod:`.byte_dfa` determinises the result.
"""

from __future__ import annotations

import re
import time

from ..errors import CompileLimitError, RegexError
from .clock import check_clock

try:  # Python 3.11+
    from re import _constants as sre_c
except ImportError:  # pragma: no cover
    import sre_constants as sre_c

MAX_CODEPOINT = 0x10FFFF


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
