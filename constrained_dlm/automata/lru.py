"""Compile stage: the one in-memory cache every compiled artefact goes through (thread-safe LRU).

Templates, byte DFAs and token automata are costly to build and immutable once built; each
kind keeps the most recently used ones in an :class:`LRU` of its own size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable


class LRU:
    """A bounded mapping that forgets the least recently used entry first."""

    def __init__(self, size: int):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key) -> Any | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def get_or_build(self, key, build: Callable[[], Any]):
        """The cached value, or ``build()`` stored (built outside the lock: builds may be slow)."""
        hit = self.get(key)
        if hit is None:
            hit = build()
            self.put(key, hit)
        return hit

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
