"""The compile stage's C loops (``_native.c``), reached through ctypes, or None.

``pip install`` builds ``_native.c`` as an optional extension; where no C compiler was found
it is skipped and every caller keeps its pure-Python path, which stays the reference the tests
compare against. ``CDLM_NATIVE=0`` turns the C path off (for those comparisons and for
benchmarks of both)."""

from __future__ import annotations

import ctypes
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


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_I32)


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
