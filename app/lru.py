"""A least-recently-used cache bounded in bytes: the generated maps' and the network's."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar


class Weighed(Protocol):
    @property
    def nbytes(self) -> int: ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Weighed)


class LRU(Generic[K, V]):
    """Values by key, least recently used first out, within `limit` bytes (their `nbytes`).

    Thread-safe. Hits are the kept object itself; a subclass copies where callers may
    change what they get.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._size = 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._size

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def lru_order(self) -> list[K]:
        """The keys held, least recently used first."""
        with self._lock:
            return list(self._items)

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: K, value: V) -> None:
        """Keep `value`, evicting the least recently used; one over `limit` is not kept."""
        size = value.nbytes
        if size > self.limit:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old.nbytes
            self._items[key] = value
            self._size += size
            while self._size > self.limit:
                _, evicted = self._items.popitem(last=False)
                self._size -= evicted.nbytes

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The value kept for `key`, or `compute()`'s, kept for next time.

        Two callers asking for the same new key at once may both compute it.
        """
        hit = self.get(key)
        if hit is not None:
            return hit
        value = compute()
        self.put(key, value)
        return value
