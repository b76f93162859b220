"""Spec stage: a regular approximation of Python statements, for holes in Python files.

A hole at a line boundary is filled with complete lines (simple statements and, with
``max_block_depth > 0``, compound statements one level deep); inside a line, one expression.
Guarantee: every text of the hole's language, put in the hole, gives a file that compiles; the
facts it relies on are checked on the concrete file by ``compile`` probes (:func:`hole_context`).
The language is built as an NFA with loops, determinised and minimised (a regex would be
exponentially long). Guarantee, soundness argument, shapes, cost and departures:
``docs/design/python_language.md``; where holes may go and what is refused: ``docs/python_infill.md``.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from ..automata import byte_dfa as _bd
from ..automata.byte_dfa import ByteDFA
from ..automata.lru import LRU
from ..errors import CompileLimitError, SpecError
from .python_subset import RESERVED_NAMES, DEFAULT_SUBSET, BlockShape, PythonSubset

from .python_builder import _Builder

__all__ = ["PythonSubset", "DEFAULT_SUBSET", "BlockShape", "python_block_regex",
           "python_block_dfa", "python_expr_dfa", "python_expr_key", "python_items_dfa",
           "python_line_dfa", "python_line_key",
           "sample_text", "RESERVED_NAMES"]


# --- cached automata -----------------------------------------------------------------------------

DFA_CACHE_SIZE = 64
_DFA_CACHE = LRU(DFA_CACHE_SIZE)


def _cached_dfa(key: str, build) -> ByteDFA:
    """The cached DFA of ``key``; a build past its deadline (NFA wiring or subset
    construction) is a :class:`CompileLimitError`."""
    def limited() -> ByteDFA:
        try:
            return build()
        except _bd._Timeout:
            raise CompileLimitError(
                "building the Python automaton took too long; lower max_expr_depth / "
                "max_block_depth or raise CompileLimits.regex_timeout_s",
                limit="regex_timeout_s") from None
    return _DFA_CACHE.get_or_build(key, limited)


def _determinize(b: _Builder, s: int, t: int, max_states: int) -> ByteDFA:
    """The shared subset construction (:func:`byte_dfa.subset_construction`), with errors
    worded for Python holes (a timeout is worded by :func:`_cached_dfa`, around every build)."""
    try:
        return _bd.subset_construction(b.nfa, s, t, max_states)
    except _bd.TooManyStates:
        raise CompileLimitError(
            f"the Python automaton passes {max_states:,} states; lower "
            "max_expr_depth / max_block_depth or raise CompileLimits.max_states",
            limit="max_states", value=max_states) from None


def python_block_regex(indent: str, *, max_block_depth: int = DEFAULT_SUBSET.max_block_depth,
                       max_expr_depth: int = DEFAULT_SUBSET.max_expr_depth,
                       allow_return: bool, allow_loop_control: bool, unit: str = "    ",
                       subset: PythonSubset | None = None, **features) -> str:
    """The key of the language of complete lines at ``indent`` (see the module docstring).

    The language is too large for a plain regex (it would be exponentially long), so this
    returns a *key*: a string naming it, which :func:`python_block_dfa` turns into its byte
    automaton and ``Template``/``infill`` use as the hole's label. The key is not a pattern
    ``re`` accepts (it starts with ``\\p{cdlm-python}``), so it cannot be mistaken for one.
    ``features``: any other :class:`PythonSubset` field.
    """
    cfg = replace(subset or DEFAULT_SUBSET, max_block_depth=max_block_depth,
                  max_expr_depth=max_expr_depth, **features)
    shape = BlockShape(indent=indent, unit=unit, allow_return=allow_return,
                       allow_loop_control=allow_loop_control)
    return _block_key(shape, cfg)


def _block_key(shape, cfg: PythonSubset, pending: bool = False) -> str:
    key = "\\p{cdlm-python}block " + repr((shape, _cfg_tuple(cfg), pending))
    with _KEYS_LOCK:
        _KEYS[key] = (shape, cfg, pending)
    return key


def _cfg_tuple(cfg: PythonSubset):
    return tuple((f, getattr(cfg, f) if f != "excluded_names" else tuple(sorted(cfg.excluded_names)))
                 for f in cfg.__dataclass_fields__)


_KEYS: dict[str, tuple] = {}
_KEYS_LOCK = threading.Lock()


def python_block_dfa(shape_or_key, cfg: PythonSubset | None = None, *, pending: bool = False,
                     timeout_s: float = 30.0, max_states: int = 200_000) -> ByteDFA:
    """The minimal byte DFA of a block language (cached per key): one :class:`BlockShape`, or a
    tuple of them, one per indentation level the middle may use, innermost first (lines at the
    first, then optionally at each next one: the middle may dedent). ``pending``: the first
    level is a body the prefix's last line opened, so it must hold a line before any dedent."""
    if isinstance(shape_or_key, str):
        key = shape_or_key
        shapes, cfg, pending = _parse_key(key)
    else:
        shapes, cfg = shape_or_key, cfg or DEFAULT_SUBSET
        key = _block_key(shapes, cfg, pending)
    if isinstance(shapes, BlockShape):
        shapes = (shapes,)

    def build() -> ByteDFA:
        b = _Builder(cfg, timeout_s, max_states)
        final = b.st()
        start = b.levels(shapes, final, pending=pending)
        return _determinize(b, start, final, max_states)

    return _cached_dfa(key, build)


def _parse_key(key: str):
    """The language a key names: only keys made by this process (a key is never evaluated)."""
    with _KEYS_LOCK:
        hit = _KEYS.get(key)
    if hit is None:
        raise SpecError(f"not a Python block language key made in this process: {key[:80]!r}",
                        hint="pass BlockShape values instead of a key")
    return hit


def python_expr_key(cfg: PythonSubset | None = None, *, tuple_ok: bool = False) -> str:
    cfg = cfg or DEFAULT_SUBSET
    return "\\p{cdlm-python}expr " + repr((tuple_ok, _cfg_tuple(cfg)))


def python_expr_dfa(cfg: PythonSubset | None = None, *, tuple_ok: bool = False,
                    timeout_s: float = 30.0, max_states: int = 200_000) -> ByteDFA:
    """One expression (or, with ``tuple_ok``, an unparenthesised tuple), on one line."""
    cfg = cfg or DEFAULT_SUBSET

    def build() -> ByteDFA:
        b = _Builder(cfg, timeout_s, max_states)
        s, t = b.st(), b.st()
        if tuple_ok:
            b.exprlist(s, t, cfg.max_expr_depth)
        else:
            b.expr(s, t, cfg.max_expr_depth)
        return _determinize(b, s, t, max_states)

    return _cached_dfa(python_expr_key(cfg, tuple_ok=tuple_ok), build)


def python_items_key(cfg: PythonSubset | None = None, *, dict_items: bool = False) -> str:
    cfg = cfg or DEFAULT_SUBSET
    return "\\p{cdlm-python}items " + repr((dict_items, _cfg_tuple(cfg)))


def python_items_dfa(cfg: PythonSubset | None = None, *, dict_items: bool = False,
                     timeout_s: float = 30.0, max_states: int = 200_000) -> ByteDFA:
    """Lines inside an open bracket: each line is optional spaces, one item (an expression, or
    ``key: value`` in a dict), a comma, then the end of the line (a comment may follow). Inside
    brackets indentation means nothing, and a comma after every item keeps any number of items
    (zero included) valid wherever one item followed by a comma is."""
    cfg = cfg or DEFAULT_SUBSET

    def build() -> ByteDFA:
        b = _Builder(cfg, timeout_s, max_states)
        s, t, line = b.st(), b.st(), b.st()
        b.eps(s, line)
        b.eps(line, t)
        start, sp, item = b.st(), b.st(), b.st()
        b.eps(line, start)
        b.lit(start, " ", sp)
        b.lit(sp, " ", sp)
        b.eps(start, item)
        b.eps(sp, item)
        end = b.st()
        if dict_items:
            key, colon, value = b.st(), b.st(), b.st()
            b.expr(item, key, cfg.max_expr_depth)
            b.lit(key, ":", colon)
            b.lit(colon, " ", value)
            b.eps(colon, value)
            b.expr(value, end, cfg.max_expr_depth)
        else:
            b.expr(item, end, cfg.max_expr_depth)
        comma = b.st()
        b.lit(end, ",", comma)
        b.eol(comma, line)
        return _determinize(b, s, t, max_states)

    return _cached_dfa(python_items_key(cfg, dict_items=dict_items), build)


def python_line_key(indent: str, cfg: PythonSubset | None = None, *, header: bool,
                    ret_ok: bool, loop_ok: bool) -> str:
    cfg = cfg or DEFAULT_SUBSET
    return "\\p{cdlm-python}line " + repr((indent, header, ret_ok, loop_ok, _cfg_tuple(cfg)))


def python_line_dfa(indent: str, cfg: PythonSubset | None = None, *, header: bool,
                    ret_ok: bool = False, loop_ok: bool = False, timeout_s: float = 30.0,
                    max_states: int = 200_000) -> ByteDFA:
    """ONE line at ``indent``: a simple statement, or (``header``) an ``if`` / ``while`` /
    ``for`` header whose body the following lines already are. Either may stand where a line
    of its kind stood; used for holes cut inside a line whose enclosing block the block
    language cannot take (see :mod:`.python_span`)."""
    cfg = cfg or DEFAULT_SUBSET

    def build() -> ByteDFA:
        b = _Builder(cfg, timeout_s, max_states)
        s, ls, t = b.st(), b.st(), b.st()
        b.lit(s, indent, ls)
        if not header:
            b.simple_line(ls, t, loop_ok, ret_ok, cfg.max_expr_depth)
            return _determinize(b, s, t, max_states)
        b._cond(ls, "if", t, cfg.header_depth)
        b._cond(ls, "while", t, cfg.header_depth)
        f, f2 = b.st(), b.st()
        b.lit(ls, "for ", f)
        b.targets(f, f2, simple=True)
        b.lit(f2, " in ", b._header_expr(t, cfg.header_depth))
        if cfg.defs:
            b.def_header(ls, t, cfg.header_depth)
        return _determinize(b, s, t, max_states)

    return _cached_dfa(python_line_key(indent, cfg, header=header, ret_ok=ret_ok,
                                       loop_ok=loop_ok), build)


# --- sampling (tests) ----------------------------------------------------------------------------

def sample_text(dfa: ByteDFA, rng: np.random.Generator, *, max_bytes: int = 400,
                stop: float = 0.3) -> str:
    """A random text of ``dfa``'s language (random live byte each step; at an accepting state,
    stop with probability ``stop``; steer to the nearest accepting state near ``max_bytes``).
    Used to test soundness on texts the language allows, whatever a tokenizer prefers."""
    dist = _distances(dfa)
    q, out = dfa.initial, bytearray()
    while True:
        if dfa.accepting[q] and (rng.random() < stop or len(out) + 1 >= max_bytes):
            break
        row = dfa.table[q]
        ok = np.nonzero((row >= 0) & (dist[np.maximum(row, 0)] >= 0))[0]
        if len(out) + dist[q] >= max_bytes:          # head for acceptance
            ok = ok[dist[row[ok]] == dist[q] - 1]
        b = int(rng.choice(ok))
        out.append(b)
        q = int(row[b])
    return out.decode("utf-8")


def _distances(dfa: ByteDFA) -> np.ndarray:
    """Fewest bytes from each state to an accepting state (-1: none)."""
    cache = getattr(dfa, "_dist", None)
    if cache is not None:
        return cache
    dist = np.where(dfa.accepting, 0, -1).astype(np.int64)
    src, byte = np.nonzero(dfa.table >= 0)
    dst = dfa.table[src, byte]
    d = 0
    while True:
        frontier = dist == d
        new = np.unique(src[frontier[dst]])
        new = new[dist[new] < 0]
        if not len(new):
            break
        d += 1
        dist[new] = d
    object.__setattr__(dfa, "_dist", dist)
    return dist
