"""One clock for a whole compile: subset construction, minimisation, lifting and trimming check
it between rounds, so that a time cap (or a request whose client left) stops the work wherever
it is and frees the thread; timing only the first stage let minimisation run for minutes."""

from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import CompileLimitError


class CompileCancelled(CompileLimitError):
    """The compile was stopped from outside (its request was abandoned)."""


@dataclass(frozen=True)
class _Clock:
    at: float                          # time.monotonic() past which the compile stops
    seconds: float                     # the cap, for the message
    option: str                        # what raises the cap, for the message
    cancel: threading.Event | None


_CLOCK: contextvars.ContextVar[_Clock | None] = contextvars.ContextVar("cdlm_compile_clock",
                                                                       default=None)


@contextmanager
def compile_clock(seconds: float, *, option: str = "CompileLimits.regex_timeout_s",
                  cancel: threading.Event | None = None):
    """Bound every compile step run inside (in this thread); clocks nest and the earliest
    deadline wins, an outer ``cancel`` event stays in force."""
    outer = _CLOCK.get()
    clock = _Clock(time.monotonic() + seconds, seconds, option, cancel)
    if outer is not None:
        first = outer if outer.at <= clock.at else clock
        clock = _Clock(first.at, first.seconds, first.option, cancel or outer.cancel)
    token = _CLOCK.set(clock)
    try:
        yield
    finally:
        _CLOCK.reset(token)


def check_clock() -> None:
    """Raise if the current compile is past its deadline or cancelled (cheap: call it per round)."""
    c = _CLOCK.get()
    if c is None:
        return
    if c.cancel is not None and c.cancel.is_set():
        raise CompileCancelled("the compile was cancelled (its request was abandoned)",
                               limit="cancelled")
    if time.monotonic() > c.at:
        raise CompileLimitError(f"compiling took longer than {c.seconds:g} s and was stopped; "
                                f"simplify the spec or raise {c.option}", limit="compile_timeout",
                                value=c.seconds)


def clock_deadline() -> float | None:
    """The current compile's ``time.monotonic()`` deadline (None: unbounded), for loops in C
    that cannot call :func:`check_clock` (they stop there, and the caller checks)."""
    c = _CLOCK.get()
    return None if c is None else c.at
