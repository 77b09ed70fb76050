"""A memory-bounded cache of index columns: read once, analyse many times.

Columns are cached per (file, column) as numpy arrays, evicted least-recently-used when
the total exceeds the budget. A file that changes on disk (size or modification time)
is re-read: the key includes both. One cache per process is shared by every dataset
(``default_cache()``); a Dask worker will hold its own.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from jaas.engine.core.partition import VetoMemo
from jaas.settings import settings

__all__ = ["CacheStats", "ColumnCache", "default_cache"]

_DEFAULT_BUDGET = settings().cache_bytes or 4 * 1024**3

# (path, size, mtime_ns, column)
_Key = tuple[str, int, int, str]


@dataclass(frozen=True)
class CacheStats:
    """Counters of a ColumnCache: hits and misses count (file, column) look-ups."""

    hits: int
    misses: int
    bytes_read: int
    bytes_cached: int
    budget: int
    entries: int
    peak_bytes: int = 0  # high-water mark of the bytes held (never above the budget)

    def __str__(self) -> str:
        return (
            f"cache: {self.hits} hits, {self.misses} misses, "
            f"{self.bytes_read / 1e6:.1f} MB read, "
            f"{self.bytes_cached / 1e6:.1f} / {self.budget / 1e6:.0f} MB held "
            f"in {self.entries} columns"
        )


class ColumnCache:
    """LRU cache of numpy columns keyed by file identity and column name.

    Args:
        budget: maximum bytes held; a single column larger than the budget is returned
            but not kept.
    """

    def __init__(self, budget: int = _DEFAULT_BUDGET) -> None:
        self.budget = int(budget)
        self._data: OrderedDict[_Key, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._peak = 0
        self._hits = 0
        self._misses = 0
        self._bytes_read = 0
        self._lock = threading.Lock()
        self.veto_memo = VetoMemo()  # veto phases and MC samples of warm queries

    @staticmethod
    def file_key(path: str) -> tuple[str, int, int]:
        st = os.stat(path)
        return (os.path.abspath(path), st.st_size, st.st_mtime_ns)

    def get_columns(
        self,
        path: str,
        columns: Sequence[str],
        load: Callable[[str, list[str]], dict[str, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        """Return ``columns`` of ``path``, calling ``load(path, missing)`` for the misses."""
        return self.get_keyed(self.file_key(path), columns, lambda missing: load(path, missing))

    def get_keyed(
        self,
        fkey: tuple[str, int, int],
        columns: Sequence[str],
        load: Callable[[list[str]], dict[str, np.ndarray]],
        *,
        derived: bool = False,
    ) -> dict[str, np.ndarray]:
        """Like ``get_columns`` for any source identified by ``fkey`` (e.g. a whole
        dataset: the key must change whenever the content can). ``derived``: what
        ``load`` returns is assembled from arrays already counted (not bytes read)."""
        out: dict[str, np.ndarray] = {}
        missing: list[str] = []
        with self._lock:
            for name in columns:
                key = (*fkey, name)
                arr = self._data.get(key)
                if arr is None:
                    missing.append(name)
                    self._misses += 1
                else:
                    self._data.move_to_end(key)
                    self._hits += 1
                    out[name] = arr
        if missing:
            loaded = load(missing)
            with self._lock:
                for name in missing:
                    arr = loaded[name]
                    arr.setflags(write=False)  # shared between queries: never mutated
                    out[name] = arr
                    if not derived:
                        self._bytes_read += arr.nbytes
                    self._put((*fkey, name), arr)
        return out

    def _put(self, key: _Key, arr: np.ndarray) -> None:
        if arr.nbytes > self.budget:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._data[key] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.budget and self._data:
            _, evicted = self._data.popitem(last=False)
            self._bytes -= evicted.nbytes
        self._peak = max(self._peak, self._bytes)

    def clear(self) -> None:
        """Drop every cached column (counters are kept)."""
        with self._lock:
            self._data.clear()
            self._bytes = 0
        self.veto_memo.clear()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                bytes_read=self._bytes_read,
                bytes_cached=self._bytes,
                budget=self.budget,
                entries=len(self._data),
                peak_bytes=self._peak,
            )


_default: ColumnCache | None = None


def default_cache() -> ColumnCache:
    """The process-wide column cache (budget from ``JAAS_CACHE_BYTES``, default 4 GiB)."""
    global _default
    if _default is None:
        _default = ColumnCache()
    return _default
