"""Streaming local queries: data larger than the column cache, memory bounded by it.

When the columns a query reads exceed the dataset's column cache budget, the local
backend does not gather whole columns: it runs one time partition per index file, one
after another. A partition owns the events of its file's time range (``[t_lo, t_hi)``
from consecutive files' first times) and reads its halo (``Spec.halo()``) from the
neighbouring files; only those files pass through the cache (which evicts), the engine's
``halo_bounds`` / ``run_partition`` count exclusively and its ``merge`` joins the partial
results, as the Dask backend does. Since ``merge`` is exact for any plan, the result is
identical to the in-memory path.

Peak memory: the cache (at most its budget, see ``CacheStats.peak_bytes``) plus one
partition (its files' rows with the halo, their masks and the kernels' work arrays) plus
the result, whose per-event parts are the veto bits (4 bytes per event, part of
``Result``) and the selection masks packed to one bit per event. The stream columns of
the result keep only the rows that pairs and off-time pairs reference; any other access
(e.g. the truth report) reads the whole column through the cache.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from jaas.engine.core.exposure import normalize_intervals
from jaas.engine.core.partition import (
    PartialResult,
    Partition,
    halo_bounds,
    merge,
    rows_between,
    run_partition,
    samples_between,
)
from jaas.engine.lang.expr import Expr
from jaas.engine.session.backend import BackendInfo, BuiltQuery, Execution
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import _load_columns
from jaas.engine.session.masks import cached_masks
from jaas.errors import FormatError
from jaas.formats.schema import INDEX_SCHEMA

if TYPE_CHECKING:
    from jaas.engine.session.dataset import Dataset, IndexFile

__all__ = [
    "PackedMask",
    "SparseColumn",
    "columns_bytes",
    "file_stream",
    "query_bytes",
    "run_streaming",
    "select_streaming",
    "should_stream",
    "should_stream_columns",
]

_FAR = 1 << 62
I64 = npt.NDArray[np.int64]


def query_bytes(ds: Dataset, query: BuiltQuery) -> int:
    """Bytes of the columns ``query`` reads over all of ``ds`` (from footers: no read)."""
    return columns_bytes(ds, query.columns)


def columns_bytes(ds: Dataset, columns: Sequence[str]) -> int:
    """Bytes of ``columns`` (with ``t``) over all of ``ds``, from the schema: no read."""
    per_event = 0
    for name in dict.fromkeys(["t", *columns]):
        try:
            per_event += np.dtype(INDEX_SCHEMA.field(name).type.to_pandas_dtype()).itemsize
        except KeyError:  # an extra column of a schema mapping: assume 8 bytes
            per_event += 8
    return per_event * ds.n_events


def _time_disjoint(files: list[IndexFile]) -> bool:
    timed = [f for f in files if f.n_events > 0]
    return all(b.t_min >= a.t_max for a, b in itertools.pairwise(timed))


def should_stream(ds: Dataset, query: BuiltQuery) -> bool:
    """Whether the local backend streams ``query``: its columns exceed the cache budget
    and the files are time-disjoint (their concatenation is the time-ordered stream)."""
    return should_stream_columns(ds, query.columns)


def should_stream_columns(ds: Dataset, columns: Sequence[str]) -> bool:
    """Whether reading ``columns`` of ``ds`` streams (see :func:`should_stream`)."""
    timed = [f for f in ds.files if f.n_events > 0]
    if len(timed) < 2 or not _time_disjoint(ds.files):
        return False
    return columns_bytes(ds, columns) > ds.cache.budget


def select_streaming(
    ds: Dataset, expr: Expr, columns: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``select`` file by file: the selected rows of ``columns`` (as :class:`SparseColumn`,
    other rows read through the cache on demand) and the mask packed to bits."""
    names = list(dict.fromkeys(["t", *columns]))
    exprs = {"__select": expr}
    rows: list[I64] = []
    kept: dict[str, list[np.ndarray]] = {n: [] for n in names}
    packed: list[tuple[np.ndarray, int]] = []
    first = 0
    for f in (f for f in ds.files if f.n_events > 0):
        cols = file_stream(ds.cache, f.path, f.n_events, names, exprs)
        mask = np.asarray(cols["__select"], dtype=bool)
        at = np.flatnonzero(mask)
        rows.append(at + first)
        for n in names:
            kept[n].append(cols[n][at])
        packed.append((np.packbits(mask), f.n_events))
        first += f.n_events
        del cols, mask
        release_arrow_memory()
    held = np.concatenate(rows) if rows else np.empty(0, np.int64)
    out = {n: SparseColumn(ds, n, held, np.concatenate(kept[n])) for n in names}
    return cast(dict[str, np.ndarray], out), cast(np.ndarray, PackedMask(packed))


class SparseColumn(np.lib.mixins.NDArrayOperatorsMixin):
    """A stream column of which only some rows (global indices) are held.

    Indexing with held rows returns them; anything else (other rows, arithmetic, numpy
    functions, array methods) reads the whole column of the dataset (through its cache)
    once.
    """

    def __init__(self, ds: Dataset, name: str, rows: I64, values: np.ndarray) -> None:
        self._ds, self.name, self._rows, self._values = ds, name, rows, values
        self._n = ds.n_events
        self.dtype = values.dtype
        self._full: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int]:
        return (self._n,)

    @property
    def size(self) -> int:
        return self._n

    def __len__(self) -> int:
        return self._n

    def full(self) -> np.ndarray:
        """The whole column (read through the dataset's cache)."""
        if self._full is None:
            self._full = self._ds.load([self.name])[self.name]
        return self._full

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.full()
        return out if dtype is None else out.astype(dtype)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        args = [x.full() if isinstance(x, SparseColumn) else x for x in inputs]
        return getattr(ufunc, method)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # array methods (astype, sum...) on the whole
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full(), name)

    def __getitem__(self, idx: Any) -> Any:
        if self._full is None and not isinstance(idx, slice | tuple):
            want = np.asarray(idx)
            if want.dtype == bool and want.shape == (self._n,):  # a selection mask
                want = np.flatnonzero(want)
            if want.dtype.kind in "iu":
                pos = np.searchsorted(self._rows, want)
                pos_ok = np.minimum(pos, max(len(self._rows) - 1, 0))
                if len(self._rows) and np.array_equal(self._rows[pos_ok], want):
                    return self._values[pos_ok]
                if not want.size:
                    return self._values[:0]
        return self.full()[idx]


class PackedMask:
    """A per-event selection mask held at one bit per event (pieces per partition)."""

    def __init__(self, pieces: list[tuple[np.ndarray, int]]) -> None:
        self._pieces = pieces  # (np.packbits(core mask), number of events)
        self._n = sum(n for _, n in pieces)
        self._count = sum(int(np.unpackbits(p, count=n).sum()) for p, n in pieces)
        self.dtype = np.dtype(bool)

    @property
    def shape(self) -> tuple[int]:
        return (self._n,)

    def __len__(self) -> int:
        return self._n

    def sum(self) -> int:
        return self._count

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        parts = [np.unpackbits(p, count=n).astype(bool) for p, n in self._pieces]
        out = np.concatenate(parts) if parts else np.zeros(0, bool)
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, idx: Any) -> Any:
        return np.asarray(self)[idx]


def file_stream(
    cache: ColumnCache, path: str, n_events: int, names: Sequence[str], exprs: Mapping[str, Expr]
) -> dict[str, np.ndarray]:
    """Columns ``names`` (with ``t``) and the masks ``exprs`` of one whole index file,
    through ``cache`` (masks cached by their text). Shared with the Dask worker.

    Raises:
        FormatError: the file no longer has the ``n_events`` rows it had when opened.
    """
    fkey = cache.file_key(path)
    cols = cache.get_keyed(
        fkey, list(dict.fromkeys(["t", *names])), lambda missing: _load_columns(path, missing)
    )
    if len(cols["t"]) != n_events:
        raise FormatError(
            f"file has {len(cols['t'])} rows, expected {n_events} as when the dataset "
            "was opened; it changed on disk: reopen the dataset",
            path=path,
        )
    return {**cols, **cached_masks(cache, fkey, exprs, cols)}


def _partitions(
    files: list[IndexFile], before: int, after: int
) -> Iterator[tuple[int, int, list[int]]]:
    """Per timed file: its core ``[t_lo, t_hi)`` and the files holding core + halo."""
    t_min = np.array([f.t_min for f in files], np.int64)
    t_max = np.array([f.t_max for f in files], np.int64)
    edges = [-_FAR, *t_min[1:].tolist(), _FAR]
    for k in range(len(files)):
        t_lo, t_hi = edges[k], edges[k + 1]
        lo = -_FAR if k == 0 else t_lo - before
        hi = _FAR if k == len(files) - 1 else t_hi - 1 + after
        need = np.flatnonzero((t_max >= lo) & (t_min <= hi)).tolist()
        yield t_lo, t_hi, need


@dataclass
class _Piece:
    """What one streamed partition leaves: its partial result, the stream rows its
    pairs use (with their column values) and its core's masks packed to bits."""

    partial: PartialResult
    rows: I64
    kept: dict[str, np.ndarray]
    packed: dict[str, tuple[np.ndarray, int]]


def _in_order(
    fn: Callable[..., _Piece], plan: list[tuple[int, int, list[int]]], workers: int
) -> Iterator[_Piece]:
    """``fn(k, *plan[k])`` for every k, in order, at most ``workers`` at once."""
    if workers <= 1:
        for k, args in enumerate(plan):
            yield fn(k, *args)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[_Piece]] = deque()
        for k, args in enumerate(plan):
            pending.append(pool.submit(fn, k, *args))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def release_arrow_memory() -> None:
    """Give the Arrow memory pool's free pages back to the system (the Parquet reader's
    buffers of evicted files; without it the pool keeps them and RSS grows)."""
    pa.default_memory_pool().release_unused()


def _workers(ds: Dataset, query: BuiltQuery, files: list[IndexFile], threads: int) -> int:
    """Partitions in flight: ``threads`` when the cache holds their files (a partition
    reads its file and its neighbours'), else one after another."""
    if threads <= 1:
        return 1
    largest = max(f.n_events for f in files) * query_bytes(ds, query) // max(ds.n_events, 1)
    return max(1, min(threads, ds.cache.budget // max(3 * largest, 1)))


def run_streaming(ds: Dataset, query: BuiltQuery, *, threads: int = 1) -> Execution:
    """Run ``query`` over ``ds`` one file-aligned partition at a time (exact); with
    ``threads`` > 1, that many partitions at once when the cache budget allows."""
    started = time.perf_counter()
    spec = query.spec
    spec.validate()
    segments = normalize_intervals(ds.segments, what="segments")
    bad = np.array([[x.start, x.end] for x in ds.lost], np.int64).reshape(-1, 2)
    before, after = spec.halo()
    files = [f for f in ds.files if f.n_events > 0]
    first_row = np.cumsum([0, *(f.n_events for f in files)]).tolist()
    samples = None
    if any(v.kind != "detector" for v in spec.vetoes):
        samples = ds.veto_memo.samples(segments, spec)
    names = list(dict.fromkeys(["t", *query.columns]))
    n_all = int(first_row[-1])

    def one(k: int, t_lo: int, t_hi: int, need: list[int]) -> _Piece:
        lo = -_FAR if k == 0 else t_lo - before
        hi = _FAR if k == len(files) - 1 else t_hi - 1 + after
        pieces = []
        for i in need:
            f = files[i]
            whole = file_stream(ds.cache, f.path, f.n_events, query.columns, query.exprs)
            i0, part_rows = rows_between(whole, lo, hi)
            pieces.append((first_row[i] + i0, part_rows))
        g0 = pieces[0][0]
        cols = {n: np.concatenate([p[n] for _, p in pieces]) for n in pieces[0][1]}
        del pieces
        t = cols["t"].astype(np.int64, copy=False)
        cols["t"] = t
        h0, a, b, h1 = halo_bounds(t, t_lo, t_hi, before, after)
        part = Partition(k, g0 + h0, g0 + a, g0 + b, g0 + h1, t_lo, t_hi)
        sl = {n: v[h0:h1] for n, v in cols.items()}
        partial = run_partition(sl, part, spec, segments, samples_between(samples, t_lo, t_hi))
        used = np.unique(
            np.concatenate(
                [partial.prompt, partial.delayed, partial.off_prompt, partial.off_delayed]
            )
        )  # may lie in the halo: de-duplicated below
        kept = {n: cols[n][used - g0] for n in names}
        packed = {n: (np.packbits(cols[n][a:b]), b - a) for n in query.exprs}
        return _Piece(partial, used, kept, packed)

    # per-event parts of the result, written in place (no per-partition copies kept
    # and no concatenation at the end: one array each)
    bits = np.zeros(n_all, np.uint32)
    derived: dict[str, np.ndarray] = {}
    partials: list[PartialResult] = []
    kept_rows: list[I64] = []
    kept: dict[str, list[np.ndarray]] = {n: [] for n in names}
    packed: dict[str, list[tuple[np.ndarray, int]]] = {n: [] for n in query.exprs}
    info = BackendInfo("local", address="streaming")
    plan = list(_partitions(files, before, after))
    for piece in _in_order(one, plan, _workers(ds, query, files, threads)):
        partial = piece.partial
        c0, c1 = partial.part.core_start, partial.part.core_stop
        bits[c0:c1] = partial.veto_bits
        partial.veto_bits = partial.veto_bits[:0].copy()
        for n, v in partial.columns.items():
            if n not in derived:
                derived[n] = np.empty(n_all, v.dtype)
            derived[n][c0:c1] = v
            partial.columns[n] = v[:0].copy()
        partials.append(partial)
        kept_rows.append(piece.rows)
        for n in names:
            kept[n].append(piece.kept[n])
        for n in query.exprs:
            packed[n].append(piece.packed[n])
        part = partial.part
        info.partitions.append((part.index, part.t_lo, part.t_hi, "local"))
        release_arrow_memory()
    if not partials:  # pragma: no cover - should_stream needs two timed files
        raise FormatError("no events to stream", path=ds.name)
    result = merge(partials, spec, segments, bad=bad)
    del partials
    result.veto_bits = bits
    result.columns = {n: derived[n] for n in result.columns}
    rows, first = np.unique(np.concatenate(kept_rows), return_index=True)
    columns = {n: SparseColumn(ds, n, rows, np.concatenate(kept[n])[first]) for n in names}
    masks = {n: PackedMask(packed[n]) for n in query.exprs}
    info.seconds = time.perf_counter() - started
    return Execution(
        ds,
        result,
        cast(dict[str, np.ndarray], columns),
        cast(dict[str, np.ndarray], masks),
        info,
    )
