"""The analytics of a stored analysis, computed on demand and kept in a small per-process LRU.

Keyed by (analysis id, SHA-256 of the float32 waveform): the history stores the waveform once and
nothing of the analytics (they are derived, cheap to recompute and change with this code), so a
worker that has not seen an analysis simply computes it again. The cache holds the JSON dict of
`Analytics.to_dict()`; callers must not mutate it. A lock keeps it consistent under threaded
servers; every worker process has its own, which changes no answer, only its speed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from services.analytics import compute_analytics

#: ~200 kB of Python objects an entry: 64 entries stay under ~15 MB per process
CACHE_SIZE = 64


class AnalyticsCache:
    """An LRU of analytics dicts keyed by (analysis id, waveform digest)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[int | None, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, waveform: Any, analysis_id: int | None = None) -> dict[str, Any]:
        """`compute_analytics(waveform).to_dict()`, from the cache when this id and waveform were seen."""
        array = np.ascontiguousarray(waveform, dtype=np.float32)
        key = (None if analysis_id is None else int(analysis_id), hashlib.sha256(array.tobytes()).hexdigest())
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
        result = compute_analytics(array).to_dict()  # outside the lock: a race computes the same answer twice
        with self._lock:
            self.misses += 1
            self._entries[key] = result
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return result

    def clear(self) -> None:
        """Forget every entry (tests, benchmarks of the cold path)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


#: the process's cache (derived data only: it changes no answer, so workers need not share it)
ANALYTICS_CACHE = AnalyticsCache()


def analytics_for(waveform: Any, analysis_id: int | None = None) -> dict[str, Any]:
    """The analytics JSON of a window through the process's cache."""
    return ANALYTICS_CACHE.get(waveform, analysis_id)
