"""Compile stage: a regex becomes a deterministic automaton over bytes.

outlines-core does the regex work (its ``Index`` over a 256-token vocabulary of single bytes *is*
the byte DFA). Some regexes make its determinisation run for minutes (counted repetitions of
alternations, e.g. ``(a|\\\\b){0,20}``), so it runs in a helper process with a time and memory
cap: past the cap we raise :class:`CompileLimitError` instead of hanging.
"""

from __future__ import annotations

import pickle
import re
import select
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..errors import CompileLimitError, RegexError

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
    """Reject what Python's ``re`` rejects, with the position, before the Rust compiler sees it."""
    try:
        re.compile(regex)
    except re.error as e:
        pos = f" at position {e.pos}" if e.pos is not None else ""
        caret = f"\n  {regex}\n  {' ' * (e.pos or 0)}^" if e.pos is not None else ""
        raise RegexError(f"invalid regex: {e.msg}{pos}{caret}") from None


# --- the capped worker -------------------------------------------------------------------------

class _Worker:
    """One long-lived helper process (started once: ~0.2 s), restarted after a cap is hit."""

    def __init__(self, memory_bytes: int):
        self.memory_bytes = memory_bytes
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "constrained_dlm.compile._regex_worker", str(self.memory_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def compile(self, regex: str, timeout_s: float):
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            data = pickle.dumps(regex)
            try:
                self.proc.stdin.write(struct.pack(">I", len(data)) + data)
                self.proc.stdin.flush()
                ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
                if not ready:
                    self._kill()
                    raise CompileLimitError(
                        f"compiling the regex took longer than {timeout_s:g} s and was stopped: "
                        f"{_short(regex)}. Counted repetitions of alternatives (e.g. '(a|bc){{0,50}}') "
                        "are the usual cause; raise CompileLimits.regex_timeout_s or simplify it",
                        limit="regex_timeout_s", value=timeout_s)
                head = self.proc.stdout.read(4)
                if len(head) < 4:
                    raise EOFError
                (n,) = struct.unpack(">I", head)
                status, payload = pickle.loads(self.proc.stdout.read(n))
            except (EOFError, BrokenPipeError, OSError):
                self._kill()
                status, payload = "memory", None
        if status == "memory":
            raise CompileLimitError(
                f"the regex compiler died (memory cap {self.memory_bytes >> 20} MiB): {_short(regex)}",
                limit="regex_memory_bytes", value=self.memory_bytes)
        if status == "error":
            raise RegexError(f"regex not supported by the automaton compiler: {payload}: {_short(regex)}")
        return payload


def _short(regex: str, n: int = 120) -> str:
    return regex if len(regex) <= n else regex[:n] + "..."


_WORKER = _Worker(memory_bytes=4 << 30)
_CACHE: OrderedDict[str, ByteDFA] = OrderedDict()
_CACHE_SIZE = 1024
_CACHE_LOCK = threading.Lock()


def regex_to_byte_dfa(regex: str, *, timeout_s: float = 10.0) -> ByteDFA:
    """Compile ``regex`` (whole-string match) to a byte DFA. Cached per regex string."""
    with _CACHE_LOCK:
        hit = _CACHE.get(regex)
        if hit is not None:
            _CACHE.move_to_end(regex)
            return hit
    check_regex_syntax(regex)
    initial, finals, transitions = _WORKER.compile(regex, timeout_s)
    dfa = _to_table(initial, finals, transitions)
    with _CACHE_LOCK:
        _CACHE[regex] = dfa
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return dfa


def _to_table(initial: int, finals, transitions) -> ByteDFA:
    states = {initial}
    states.update(finals)
    states.update(transitions)
    for row in transitions.values():
        states.update(row.values())
    order = {s: i for i, s in enumerate(sorted(states))}
    table = np.full((len(order), 256), DEAD, dtype=np.int32)
    for s, row in transitions.items():
        for b, t in row.items():
            if b < 256:  # id 256 is the Index's end-of-sequence token
                table[order[s], b] = order[t]
    accepting = np.zeros(len(order), dtype=bool)
    for f in finals:
        accepting[order[f]] = True
    return ByteDFA(table=table, initial=order[initial], accepting=accepting)
