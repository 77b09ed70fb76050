"""Truth events as columns of numpy arrays, and their conversion to TRUTH_SCHEMA tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from jaas.formats.schema import TRUTH_SCHEMA, Source

__all__ = ["ROLES", "SOURCES", "TRACK_COLUMNS", "Events", "truth_table"]

SOURCES: tuple[str, ...] = tuple(s.value for s in Source)
ROLES: tuple[str, ...] = ("single", "prompt", "delayed", "muon", "neutron", "beta", "alpha")
TRACK_COLUMNS = ("mx0", "my0", "mz0", "mx1", "my1", "mz1")

# internal columns: uid orders ties deterministically; src/role index SOURCES/ROLES
_DTYPES: dict[str, type] = {
    "t": np.int64,
    "uid": np.int64,
    "src": np.int8,
    "role": np.int8,
    "corr_id": np.int64,
    "E_true": np.float32,
    "x": np.float32,
    "y": np.float32,
    "z": np.float32,
    **dict.fromkeys(TRACK_COLUMNS, np.float32),
    "showering": np.bool_,
    "wp": np.bool_,
}


class Events:
    """Columns of truth events (``t`` ns, ``E_true`` MeV, ``x,y,z`` m, track, flags).

    ``uid`` is unique in the run and fixes the order of events with equal times;
    ``src`` and ``role`` index :data:`SOURCES` and :data:`ROLES`.
    """

    __slots__ = ("cols",)

    def __init__(self, cols: dict[str, npt.NDArray[Any]]) -> None:
        self.cols = cols

    @classmethod
    def make(cls, n: int, **values: npt.ArrayLike) -> Events:
        """Build ``n`` events; missing columns get defaults (NaN track, False flags, -1 corr)."""
        cols: dict[str, npt.NDArray[Any]] = {}
        for name, dtype in _DTYPES.items():
            if name in values:
                arr: npt.NDArray[Any] = np.asarray(values[name], dtype=dtype)
                if arr.ndim == 0:
                    cols[name] = np.full(n, arr, dtype)
                elif arr.shape == (n,):
                    cols[name] = np.ascontiguousarray(arr)
                else:
                    cols[name] = np.ascontiguousarray(np.broadcast_to(arr, (n,)))
            elif name in TRACK_COLUMNS:
                cols[name] = np.full(n, np.nan, np.float32)
            elif name == "corr_id":
                cols[name] = np.full(n, -1, np.int64)
            elif dtype is np.bool_:
                cols[name] = np.zeros(n, np.bool_)
            else:
                raise KeyError(f"Events.make needs column {name!r}")
        unknown = set(values) - set(_DTYPES)
        if unknown:
            raise KeyError(f"unknown event columns {sorted(unknown)}")
        return cls(cols)

    @classmethod
    def empty(cls) -> Events:
        return cls({name: np.zeros(0, dtype) for name, dtype in _DTYPES.items()})

    @classmethod
    def concat(cls, parts: Iterable[Events]) -> Events:
        items = [p for p in parts if len(p)]
        if not items:
            return cls.empty()
        if len(items) == 1:
            return items[0]
        return cls({name: np.concatenate([p.cols[name] for p in items]) for name in _DTYPES})

    def __len__(self) -> int:
        return len(self.cols["t"])

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.cols[name]

    def take(self, index: npt.NDArray[np.integer] | npt.NDArray[np.bool_] | slice) -> Events:
        """Rows selected by an index array, a mask or a slice."""
        return Events({name: arr[index] for name, arr in self.cols.items()})

    def sorted(self) -> Events:
        """Rows ordered by (t, uid)."""
        return self.take(self.order())

    def order(self) -> npt.NDArray[np.intp]:
        """Row order by (t, uid); a stable sort on ``t`` alone unless some times are equal.

        Sources append time-sorted runs, which the stable (merge) sort joins fast; only
        when two events share a time is the slower two-key sort needed for the ``uid`` rule.
        """
        t = self.cols["t"]
        order = np.argsort(t, kind="stable")
        ts = t[order]
        if len(ts) > 1 and bool(np.any(ts[1:] == ts[:-1])):
            order = np.lexsort((self.cols["uid"], t))
        return order


def _dictionary(codes: npt.NDArray[np.int8], names: tuple[str, ...]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), pa.array(names, pa.string()))


def truth_table(
    events: Events,
    *,
    run: int,
    event_id: npt.NDArray[np.int64],
    file_seq: npt.NDArray[np.int32] | int,
    entry: npt.NDArray[np.int64],
) -> pa.Table:
    """Arrow table of TRUTH_SCHEMA for ``events`` (dictionaries list all sources and roles)."""
    n = len(events)
    c = events.cols
    arrays = {
        "run": pa.array(np.full(n, run, np.int32)),
        "event_id": pa.array(np.asarray(event_id, np.int64)),
        "file_seq": pa.array(np.broadcast_to(np.asarray(file_seq, np.int32), (n,)).copy()),
        "entry": pa.array(np.asarray(entry, np.int64)),
        "t": pa.array(c["t"]),
        "source": _dictionary(c["src"], SOURCES),
        "role": _dictionary(c["role"], ROLES),
        "corr_id": pa.array(c["corr_id"]),
        "E_true": pa.array(c["E_true"]),
        **{k: pa.array(c[k]) for k in ("x", "y", "z", *TRACK_COLUMNS, "showering", "wp")},
    }
    return pa.table(arrays, schema=TRUTH_SCHEMA)
