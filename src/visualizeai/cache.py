"""A thread-safe LRU bounded both by entry count and by the bytes its values hold."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedLRU(Generic[V]):
    """Evicts least recently used entries while over ``max_items`` or ``max_bytes``.

    ``size_of`` tells the bytes of a value; a single value larger than ``max_bytes`` is not kept.
    """

    def __init__(self, max_items: int, max_bytes: int, size_of: Callable[[V], int]):
        if max_items < 1 or max_bytes < 1:
            raise ValueError("cache bounds must be positive")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._data: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: str, value: V) -> bool:
        """Store ``value``; returns False when it alone exceeds the byte bound and was not kept."""
        size = self._size_of(value)
        with self._lock:
            if key in self._data:
                self._bytes -= self._data.pop(key)[1]
            if size > self.max_bytes:
                return False
            self._data[key] = (value, size)
            self._bytes += size
            while len(self._data) > self.max_items or self._bytes > self.max_bytes:
                _, (_, evicted_size) = self._data.popitem(last=False)
                self._bytes -= evicted_size
            return True

    def keys(self) -> list[str]:
        """The keys held now, least recently used first (a copy; reading it changes no order)."""
        with self._lock:
            return list(self._data)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes


class KeyedLocks:
    """One lock per key, made on demand and dropped once nobody holds or waits for it, so concurrent requests
    for the same thing compute it once while requests for different things never wait on each other."""

    def __init__(self) -> None:
        self._locks: dict[str, list] = {}  # key → [lock, holders and waiters]
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._lock:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._lock:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._locks)
