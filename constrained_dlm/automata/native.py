"""The compile stage's C loops (``_native.c``), reached through ctypes, or None.

``pip install`` builds ``_native.c`` as an optional extension; where no C compiler was found
it is skipped and every caller keeps its pure-Python path, which stays the reference the tests
compare against. ``CDLM_NATIVE=0`` turns the C path off (for those comparisons and for
benchmarks of both)."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import time

import numpy as np

_I32 = ctypes.POINTER(ctypes.c_int32)


def _load():
    if os.environ.get("CDLM_NATIVE", "1") in ("0", "off", ""):
        return None
    spec = importlib.util.find_spec(f"{__package__}._native")
    if spec is None or not spec.origin:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    f = lib.cdlm_subset_construction
    f.restype = ctypes.c_void_p
    f.argtypes = [ctypes.c_int32] + [_I32] * 6 + [ctypes.c_int32] * 3 + [ctypes.c_int64,
                                                                          ctypes.c_double]
    for g in (lib.cdlm_moore, lib.cdlm_hopcroft):
        g.restype = ctypes.c_int64
        g.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, ctypes.POINTER(ctypes.c_uint8), _I32,
                      ctypes.c_double]
    r = lib.cdlm_regex_dfa
    r.restype = ctypes.c_void_p
    r.argtypes = [ctypes.POINTER(ctypes.c_uint32), ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_double]
    for name in ("cdlm_result_classes", "cdlm_result_nbounds"):
        getattr(lib, name).restype = ctypes.c_int64
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.cdlm_result_bounds.restype = None
    lib.cdlm_result_bounds.argtypes = [ctypes.c_void_p, _I32]
    f = lib.cdlm_lift
    f.restype = ctypes.c_void_p
    i64p = ctypes.POINTER(ctypes.c_int64)
    f.argtypes = ([ctypes.c_int64, _I32, _I32, _I32, ctypes.c_int64, _I32, ctypes.c_int64,
                   ctypes.c_int64] + [i64p] * 4 + [_I32] * 5 + [ctypes.c_int64, ctypes.c_double])
    for name in ("cdlm_lift_status", "cdlm_lift_cols"):
        getattr(lib, name).restype = ctypes.c_int64
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.cdlm_lift_work.restype = ctypes.c_int64
    lib.cdlm_lift_work.argtypes = [ctypes.c_void_p, i64p]
    lib.cdlm_lift_copy.restype = None
    lib.cdlm_lift_copy.argtypes = [ctypes.c_void_p, _I32, _I32]
    lib.cdlm_lift_free.restype = None
    lib.cdlm_lift_free.argtypes = [ctypes.c_void_p]
    u8p = ctypes.POINTER(ctypes.c_uint8)
    lib.cdlm_reach.restype = ctypes.c_int32
    lib.cdlm_reach.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, ctypes.c_int64, i64p]
    lib.cdlm_coaccessible.restype = ctypes.c_int32
    lib.cdlm_coaccessible.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, u8p, u8p]
    lib.cdlm_longest_path.restype = ctypes.c_int64
    lib.cdlm_longest_path.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, ctypes.c_int64, u8p]
    lib.cdlm_bfs_rank.restype = ctypes.c_int32
    lib.cdlm_bfs_rank.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, ctypes.c_int64, i64p]
    lib.cdlm_counter_product.restype = None
    lib.cdlm_counter_product.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, _I32,
                                         ctypes.c_int64, ctypes.c_int32, _I32]
    lib.cdlm_trim_plan.restype = ctypes.c_int64
    lib.cdlm_trim_plan.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, ctypes.c_int64, u8p,
                                   i64p, u8p, u8p]
    lib.cdlm_trim_copy.restype = None
    lib.cdlm_trim_copy.argtypes = [ctypes.c_int64, ctypes.c_int64, _I32, _I32, _I32,
                                   ctypes.c_int64, _I32]
    lib.cdlm_reach_live.restype = None
    lib.cdlm_reach_live.argtypes = ([ctypes.c_int64] * 4 + [u8p, i64p, u8p, i64p, ctypes.c_int64,
                                    i64p, i64p, ctypes.c_int64, u8p, u8p, u8p])
    lib.cdlm_group_edges.restype = ctypes.c_int64
    lib.cdlm_group_edges.argtypes = [ctypes.c_int64, ctypes.c_int64] + [i64p] * 9
    lib.cdlm_result_status.restype = ctypes.c_int32
    lib.cdlm_result_status.argtypes = [ctypes.c_void_p]
    lib.cdlm_result_states.restype = ctypes.c_int64
    lib.cdlm_result_states.argtypes = [ctypes.c_void_p]
    lib.cdlm_result_copy.restype = None
    lib.cdlm_result_copy.argtypes = [ctypes.c_void_p, _I32, ctypes.POINTER(ctypes.c_uint8)]
    lib.cdlm_result_free.restype = None
    lib.cdlm_result_free.argtypes = [ctypes.c_void_p]
    return lib


LIB = _load()


class NativeTooManyStates(Exception):
    pass


class NativeTimeout(Exception):
    pass


def _stack_safe(f):
    """Near Python's recursion limit (deep grammars) ctypes fails while converting arguments;
    that is the RecursionError the callers already word as a limit, so raise it as one."""
    @functools.wraps(f)
    def call(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except ctypes.ArgumentError as e:
            if "RecursionError" in str(e) or isinstance(e.__context__, RecursionError):
                raise RecursionError(str(e)) from e
            raise
    return call


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_I32)


@_stack_safe
def subset_construction(eps, edges, bounds, start: int, final: int, max_states: int,
                        deadline: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows (Q, K) int32 over byte classes, accepting (Q,) bool) of the NFA ``eps`` /
    ``edges`` (lists per state: targets, and (byte_lo, byte_hi, target)); ``bounds``: the byte
    class cut points. Subset 0 is the start's closure; rows in discovery order, as the Python
    reference numbers them."""
    n = len(eps)
    eps_ptr = np.zeros(n + 1, dtype=np.int32)
    eps_ptr[1:] = np.cumsum([len(r) for r in eps])
    eps_to = np.fromiter((t for r in eps for t in r), dtype=np.int32, count=int(eps_ptr[-1]))
    edge_ptr = np.zeros(n + 1, dtype=np.int32)
    edge_ptr[1:] = np.cumsum([len(r) for r in edges])
    m = int(edge_ptr[-1])
    flat = np.fromiter((x for r in edges for e in r for x in e), dtype=np.int32, count=3 * m)
    flat = flat.reshape(m, 3)
    byte_class = (np.searchsorted(np.asarray(bounds), np.arange(256), side="right") - 1)
    clo = np.ascontiguousarray(byte_class[flat[:, 0]], dtype=np.int32)
    chi = np.ascontiguousarray(byte_class[flat[:, 1]], dtype=np.int32)
    to = np.ascontiguousarray(flat[:, 2])
    k_n = len(bounds) - 1
    h = LIB.cdlm_subset_construction(n, _ptr(eps_ptr), _ptr(eps_to), _ptr(edge_ptr), _ptr(clo),
                                     _ptr(chi), _ptr(to), k_n, start, final, max_states,
                                     deadline)
    if not h:
        raise MemoryError("subset construction: out of memory")
    try:
        status = LIB.cdlm_result_status(h)
        if status == 1:
            raise NativeTooManyStates
        if status == 2:
            raise NativeTimeout
        if status:
            raise MemoryError("subset construction: out of memory")
        q_n = LIB.cdlm_result_states(h)
        rows = np.empty((q_n, k_n), dtype=np.int32)
        acc = np.empty(q_n, dtype=np.uint8)
        LIB.cdlm_result_copy(h, _ptr(rows), acc.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
        return rows, acc.astype(bool)
    finally:
        LIB.cdlm_result_free(h)


@_stack_safe
def regex_dfa(regex: str, max_states: int, deadline: float):
    """(rows (Q, K) int32 over byte classes, accepting (Q,) bool, class cut points) of the
    regex, not minimised; None when the C front end does not read this regex (inline flags,
    anchors, lookaround, syntax errors...: the Python path handles and words those)."""
    cps = np.frombuffer(regex.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    h = LIB.cdlm_regex_dfa(cps.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)), len(cps),
                           max_states, deadline)
    if not h:
        raise MemoryError("regex compile: out of memory")
    try:
        status = LIB.cdlm_result_status(h)
        if status == 4:
            return None
        if status == 1:
            raise NativeTooManyStates
        if status == 2:
            raise NativeTimeout
        if status:
            raise MemoryError("regex compile: out of memory")
        q_n, k_n = LIB.cdlm_result_states(h), LIB.cdlm_result_classes(h)
        rows = np.empty((q_n, k_n), dtype=np.int32)
        acc = np.empty(q_n, dtype=np.uint8)
        LIB.cdlm_result_copy(h, _ptr(rows), acc.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
        bounds = np.empty(LIB.cdlm_result_nbounds(h), dtype=np.int32)
        LIB.cdlm_result_bounds(h, _ptr(bounds))
        return rows, acc.astype(bool), bounds
    finally:
        LIB.cdlm_result_free(h)


class NativeLiftWork(Exception):
    """The lift passed ``max_lift_work`` at a byte depth: (depth, distinct steps)."""


def flat_trie(trie) -> dict:
    """The vocabulary trie's levels as flat int32 arrays with per-level offsets (see
    ``_native_lift.h``)."""
    def cat(parts, dtype=np.int32):
        off = np.zeros(len(parts) + 1, dtype=np.int64)
        off[1:] = np.cumsum([len(p) for p in parts])
        body = np.concatenate([np.asarray(p) for p in parts]) if parts else np.zeros(0)
        return np.ascontiguousarray(body, dtype=dtype), off
    byte, node_off = cat(trie.byte)
    child_start, cs_off = cat(trie.child_start)
    end_start, es_off = cat(trie.end_start)
    end_tok, et_off = cat(trie.end_tok)
    return {"depth": len(trie.byte), "byte": byte, "node_off": node_off, "child_start": child_start,
            "cs_off": cs_off, "end_start": end_start, "es_off": es_off, "end_tok": end_tok,
            "et_off": et_off, "size": trie.size}


@_stack_safe
def lift(flat: dict, ext: np.ndarray, inc_ext: np.ndarray | None, byte_cls: np.ndarray,
         starts: np.ndarray, max_work: int, deadline: float):
    """(nxt (S, U) int32, cnt (S, U) int32 or None, token column (V,) int64) of the walk of
    every token from every start (``lift._lift``'s contract)."""
    q_n = ext.shape[0] - 1
    ext = np.ascontiguousarray(ext, dtype=np.int32)
    inc = None if inc_ext is None else np.ascontiguousarray(inc_ext, dtype=np.int32)
    cls = np.ascontiguousarray(byte_cls, dtype=np.int32)
    st = np.ascontiguousarray(starts, dtype=np.int32)
    col = np.full(flat["size"], -1, dtype=np.int32)
    i64 = ctypes.POINTER(ctypes.c_int64)
    h = LIB.cdlm_lift(q_n, _ptr(ext), None if inc is None else _ptr(inc), _ptr(cls),
                      int(cls.max()) + 1, _ptr(st), len(st), flat["depth"],
                      flat["node_off"].ctypes.data_as(i64), flat["cs_off"].ctypes.data_as(i64),
                      flat["es_off"].ctypes.data_as(i64), flat["et_off"].ctypes.data_as(i64),
                      _ptr(flat["byte"]), _ptr(flat["child_start"]), _ptr(flat["end_start"]),
                      _ptr(flat["end_tok"]), _ptr(col), max_work, deadline)
    if not h:
        raise MemoryError("lift: out of memory")
    try:
        status = LIB.cdlm_lift_status(h)
        if status == 1:
            level = ctypes.c_int64()
            n = LIB.cdlm_lift_work(h, ctypes.byref(level))
            raise NativeLiftWork(int(level.value), int(n))
        if status == 2:
            raise NativeTimeout
        if status:
            raise MemoryError("lift: out of memory")
        u_n = LIB.cdlm_lift_cols(h)
        nxt = np.empty((len(st), u_n), dtype=np.int32)
        cnt = None if inc is None else np.empty((len(st), u_n), dtype=np.int32)
        LIB.cdlm_lift_copy(h, _ptr(nxt), None if cnt is None else _ptr(cnt))
        return nxt, cnt, col.astype(np.int64)
    finally:
        LIB.cdlm_lift_free(h)


def _u8(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.uint8)


def _walk(fn, t: np.ndarray, initial: int, what: str) -> np.ndarray:
    """One (S,) int64 result of a breadth-first walk of a (S, C) table (``cdlm_reach``,
    ``cdlm_bfs_rank``)."""
    t = np.ascontiguousarray(t, dtype=np.int32)
    out = np.empty(t.shape[0], dtype=np.int64)
    if fn(t.shape[0], t.shape[1], _ptr(t), initial,
          out.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))):
        raise MemoryError(f"{what}: out of memory")
    return out


@_stack_safe
def reach(t: np.ndarray, initial: int) -> np.ndarray:
    """Fewest transitions from ``initial`` to each state of a (S, C) table (-1: unreachable)."""
    return _walk(LIB.cdlm_reach, t, initial, "reach")


@_stack_safe
def bfs_rank(t: np.ndarray, initial: int) -> np.ndarray:
    """Each state's place in a breadth-first walk of a (S, C) table from ``initial``."""
    return _walk(LIB.cdlm_bfs_rank, t, initial, "breadth-first rank")


@_stack_safe
def coaccessible(t: np.ndarray, accepting: np.ndarray) -> np.ndarray:
    """States of a (S, C) table from which an accepting state is reachable."""
    t = np.ascontiguousarray(t, dtype=np.int32)
    acc, live = _u8(accepting), np.empty(t.shape[0], dtype=np.uint8)
    u8p = ctypes.POINTER(ctypes.c_uint8)
    if LIB.cdlm_coaccessible(t.shape[0], t.shape[1], _ptr(t), acc.ctypes.data_as(u8p),
                             live.ctypes.data_as(u8p)):
        raise MemoryError("coaccessible: out of memory")
    return live.astype(bool)


@_stack_safe
def longest_path(t: np.ndarray, initial: int, accepting: np.ndarray) -> int | None:
    """Most transitions on an accepted path (None: a cycle makes it unbounded)."""
    t = np.ascontiguousarray(t, dtype=np.int32)
    acc = _u8(accepting)
    n = LIB.cdlm_longest_path(t.shape[0], t.shape[1], _ptr(t), initial,
                              acc.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
    if n == -2:
        raise MemoryError("longest path: out of memory")
    return None if n == -1 else int(n)


@_stack_safe
def counter_product(base: np.ndarray, inc: np.ndarray, k_n: int, saturate: bool) -> np.ndarray:
    """The (Q k_n, C) table of ``base`` (Q, C) paired with a counter 0..k_n-1 that each class
    moves by ``inc`` (Q, C); past k_n - 1 the move is dead, or (``saturate``) stays at k_n - 1."""
    base = np.ascontiguousarray(base, dtype=np.int32)
    inc = np.ascontiguousarray(inc, dtype=np.int32)
    out = np.empty((base.shape[0] * k_n, base.shape[1]), dtype=np.int32)
    LIB.cdlm_counter_product(base.shape[0], base.shape[1], _ptr(base), _ptr(inc), k_n,
                             int(saturate), _ptr(out))
    return out


@_stack_safe
def trim(t: np.ndarray, initial: int, accepting: np.ndarray):
    """(dist, keep, table, used) of a (S, C) table: fewest transitions from ``initial`` (-1
    unreachable), the states both reachable and co-reachable, their rows over the ``used``
    classes with targets renumbered (None when ``initial`` is not kept)."""
    t = np.ascontiguousarray(t, dtype=np.int32)
    s_n, c_n = t.shape
    u8p = ctypes.POINTER(ctypes.c_uint8)
    dist = np.empty(s_n, dtype=np.int64)
    keep, used = np.empty(s_n, dtype=np.uint8), np.empty(c_n, dtype=np.uint8)
    n = LIB.cdlm_trim_plan(s_n, c_n, _ptr(t), initial, _u8(accepting).ctypes.data_as(u8p),
                           dist.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)),
                           keep.ctypes.data_as(u8p), used.ctypes.data_as(u8p))
    if n < 0:
        raise MemoryError("trim: out of memory")
    keep, used = keep.astype(bool), used.astype(bool)
    if not keep[initial]:
        return dist, keep, None, used
    idx = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int32)
    cols = np.nonzero(used)[0].astype(np.int32)
    out = np.empty((int(n), len(cols)), dtype=np.int32)
    LIB.cdlm_trim_copy(s_n, c_n, _ptr(t), _ptr(idx), _ptr(cols), len(cols), _ptr(out))
    return dist, keep, out, used


def reach_live(masked: np.ndarray, cls: np.ndarray, present: np.ndarray, trans: np.ndarray,
               pair_src: np.ndarray, pair_dst: np.ndarray, initial: int,
               accepting: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reach and live sets (H, N + 1, S) of ``decode.sweeps.reach_live_seq`` on the host:
    ``masked``/``present`` (H, N) bool, ``cls`` (H, N) classes, ``trans`` (S, C) -1 dead."""
    h_n, n_n = masked.shape
    s_n, c_n = trans.shape
    reach = np.empty((h_n, n_n + 1, s_n), dtype=np.uint8)
    live = np.empty((h_n, n_n + 1, s_n), dtype=np.uint8)
    u8p, i64p = ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_int64)
    arrays = [_u8(masked), np.ascontiguousarray(cls, dtype=np.int64), _u8(present),
              np.ascontiguousarray(trans, dtype=np.int64)]
    pairs = [np.ascontiguousarray(pair_src, dtype=np.int64),
             np.ascontiguousarray(pair_dst, dtype=np.int64)]
    acc = _u8(accepting)
    LIB.cdlm_reach_live(h_n, n_n, s_n, c_n, arrays[0].ctypes.data_as(u8p),
                        arrays[1].ctypes.data_as(i64p), arrays[2].ctypes.data_as(u8p),
                        arrays[3].ctypes.data_as(i64p), len(pairs[0]),
                        pairs[0].ctypes.data_as(i64p), pairs[1].ctypes.data_as(i64p), initial,
                        acc.ctypes.data_as(u8p), reach.ctypes.data_as(u8p),
                        live.ctypes.data_as(u8p))
    return reach.view(bool), live.view(bool)


def group_edges(trans: np.ndarray):
    """(src, cls, dst, pair_src, pair_dst, crow, col) of a (S, C) table (-1 dead): its valid
    transitions row by row, the distinct (src, dst) pairs in sorted order, and the edges' pair
    numbers grouped by class (a CSR of C rows, within a class by pair number)."""
    t = np.ascontiguousarray(trans, dtype=np.int64)
    s_n, c_n = t.shape
    e_n = int(np.count_nonzero(t >= 0))
    edges = [np.empty(e_n, dtype=np.int64) for _ in range(6)]      # src cls dst ps pd pair
    crow, col = np.empty(c_n + 1, dtype=np.int64), np.empty(e_n, dtype=np.int64)
    i64p = ctypes.POINTER(ctypes.c_int64)
    u_n = LIB.cdlm_group_edges(s_n, c_n, t.ctypes.data_as(i64p),
                               *[a.ctypes.data_as(i64p) for a in edges + [crow, col]])
    if u_n < 0:
        raise MemoryError("group edges: out of memory")
    src, cls, dst, ps, pd, _ = edges
    return src, cls, dst, ps[:u_n], pd[:u_n], crow, col


@_stack_safe
def moore(t: np.ndarray, accepting: np.ndarray, deadline: float) -> tuple[np.ndarray, int]:
    """(block of each state, number of blocks) of a (Q, K) table (-1 dead): states with the
    same future share a block; blocks dense, in order of first appearance. Hopcroft's
    O(K Q log Q) refinement (``cdlm_moore``, Moore's rounds, is kept for comparison)."""
    t = np.ascontiguousarray(t, dtype=np.int32)
    acc = np.ascontiguousarray(accepting, dtype=np.uint8)
    block = np.empty(t.shape[0], dtype=np.int32)
    n = LIB.cdlm_hopcroft(t.shape[0], t.shape[1], _ptr(t),
                       acc.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), _ptr(block), deadline)
    if n == -2:
        raise NativeTimeout
    if n < 0:
        raise MemoryError("minimisation: out of memory")
    return block.astype(np.int64), int(n)


def monotonic_deadline(*deadlines: float | None) -> float:
    """The earliest of the given ``time.monotonic()`` deadlines (C reads the same clock)."""
    ds = [d for d in deadlines if d is not None]
    return min(ds) if ds else time.monotonic() + 1e9
