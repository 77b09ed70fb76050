"""Per-event columns of a distributed result, materialised only when asked for.

A distributed query returns the rows its pairs reference (``take`` serves ``pairs``
from them); a whole column (``res.columns["E"]``, ``truth()``, a cut flow on the masks)
is loaded on first access, all columns at once, by the dataset on the client when its
files are readable here, else from the workers owning them (their caches are warm).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

__all__ = ["LazyColumns"]


class LazyColumns(Mapping[str, np.ndarray]):
    """A read-only mapping name -> per-event array, loaded by ``load`` on first access.

    Args:
        names: the keys, in order.
        load: returns every column (a superset of ``names`` is fine).
        rows: sorted global indices whose values are known without loading.
        values: per name, the values at ``rows``.
    """

    def __init__(
        self,
        names: Sequence[str],
        load: Callable[[], Mapping[str, np.ndarray]],
        rows: np.ndarray | None = None,
        values: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self._names = list(dict.fromkeys(names))
        self._load = load
        self._full: dict[str, np.ndarray] | None = None
        self._rows = np.empty(0, np.int64) if rows is None else rows
        self._values = dict(values or {})

    @property
    def loaded(self) -> bool:
        """Whether the whole columns have been loaded."""
        return self._full is not None

    def _all(self) -> dict[str, np.ndarray]:
        if self._full is None:
            got = self._load()
            self._full = {n: got[n] for n in self._names}
        return self._full

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def take(self, name: str, idx: np.ndarray) -> np.ndarray:
        """``self[name][idx]``, without loading the column when ``idx`` are known rows."""
        idx = np.asarray(idx, np.int64)
        known = self._values.get(name)
        if self._full is None and known is not None:
            pos = np.searchsorted(self._rows, idx)
            pos = np.minimum(pos, max(len(self._rows) - 1, 0))
            if not idx.size:
                return known[:0]
            if len(self._rows) and bool((self._rows[pos] == idx).all()):
                return known[pos]
        return self[name][idx]

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else f"{len(self._rows)} rows known"
        return f"<LazyColumns {', '.join(self._names)} ({state})>"
