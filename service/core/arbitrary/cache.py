"""A bounded least-recently-used cache of paintings' style statistics, keyed by the painting's sha256.

A painting's WCT statistics (per tap: a C x C colouring matrix and a mean, about 1.2 MB over the five Lite0
taps) take an encoder pass over the painting and one eigendecomposition per tap; a second request with
the same painting (same bytes, same style size) skips both, and skips decoding the painting too. Both the
number of entries and their total bytes are bounded, so no sequence of paintings grows the server's memory
past ``max_bytes``; an entry larger than the whole budget is computed, used and not kept. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from service.core.arbitrary.transform import FeatureStats
from service.core.errors import InvalidArgument

StyleStats = dict[str, FeatureStats]  # tap -> statistics


def stats_bytes(stats: StyleStats) -> int:
    return sum(s.nbytes for s in stats.values())


@dataclass(frozen=True)
class CacheInfo:
    entries: int
    bytes: int
    hits: int
    misses: int
    max_entries: int
    max_bytes: int


class StatsCache:
    """``get_or_compute(key, compute)``: the cached statistics of ``key`` or ``compute()``'s, kept."""

    def __init__(self, max_entries: int = 64, max_bytes: int = 128 * 1024 * 1024) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise InvalidArgument("The style cache's bounds must be >= 0.")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._items: OrderedDict[str, tuple[StyleStats, int]] = OrderedDict()
        self._bytes = self.hits = self.misses = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> StyleStats | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: str, stats: StyleStats) -> None:
        size = stats_bytes(stats)
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes or self.max_entries == 0:
                return
            self._items[key] = (stats, size)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def get_or_compute(self, key: str, compute: Callable[[], StyleStats]) -> tuple[StyleStats, bool]:
        """(statistics, True if they came from the cache). Two concurrent misses on one key both compute
        (the second ``put`` replaces the first): cheaper than holding a lock over an encoder pass."""
        found = self.get(key)
        if found is not None:
            return found, True
        with self._lock:
            self.misses += 1
        stats = compute()
        self.put(key, stats)
        return stats, False

    def info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(
                len(self._items), self._bytes, self.hits, self.misses, self.max_entries, self.max_bytes
            )

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
