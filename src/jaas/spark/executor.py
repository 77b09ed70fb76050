"""Executor side of the Spark backend: a per-process column cache and the partition task.

Spark runs Python code in worker processes that it reuses across tasks
(``spark.python.worker.reuse=true``, set by the backend), so a module-level
``ColumnCache`` keeps the columns and masks of the files an executor has read: a second
query with new cuts reads no index column again. The task of one time partition reads
its core and halo rows from the index files (shared storage) through that cache with the
cluster layer's own helpers (``file_stream``, the engine's ``rows_between``), then runs
the engine's ``halo_bounds`` / ``samples_between`` / ``run_partition`` exactly as a Dask
worker does; the driver merges the partial results with the engine's ``merge``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from jaas.cluster.worker import FileRef, PartTask, Query, _concat, _slice, file_stream
from jaas.engine.core.partition import (
    PartialResult,
    Partition,
    halo_bounds,
    run_partition,
    samples_between,
)
from jaas.engine.session.cache import CacheStats, ColumnCache
from jaas.settings import settings

__all__ = ["SparkPart", "SparkTask", "cache", "run_tasks"]

_CACHE: ColumnCache | None = None


def cache() -> ColumnCache:
    """This Python worker's column cache (``JAAS_CACHE_BYTES``, default 1 GiB)."""
    global _CACHE
    if _CACHE is None:
        _CACHE = ColumnCache(settings().cache_bytes or 1 << 30)
    return _CACHE


@dataclass(frozen=True)
class SparkTask:
    """One time partition and the files (in time order) holding its core and halo rows."""

    part: PartTask  # its ``sources`` are all ``FileRef`` (files read by the executor)
    files: tuple[FileRef, ...]


@dataclass
class SparkPart:
    """A partition's partial result, its core rows (Arrow IPC), where it ran, cache use."""

    index: int
    partial: PartialResult
    core_ipc: bytes
    where: str
    bytes_read: int
    misses: int

    def core(self) -> dict[str, np.ndarray]:
        """The gathered core columns, as numpy arrays of their original dtype."""
        table = pa.ipc.open_stream(self.core_ipc).read_all()
        return {n: table.column(n).to_numpy() for n in table.column_names}


def _to_ipc(columns: dict[str, np.ndarray]) -> bytes:
    batch = pa.RecordBatch.from_pydict({n: pa.array(v) for n, v in columns.items()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


def run_task(task: SparkTask, query: Query) -> SparkPart:
    """Read the partition's rows (through this process's cache) and run the engine on it."""
    store = cache()
    before: CacheStats = store.stats()
    p = task.part
    pieces = [
        _slice(f.path, f.offset, file_stream(store, f, query), p.lo, p.hi) for f in task.files
    ]
    names = list(dict.fromkeys(["t", *query.names, *query.exprs]))
    if pieces:
        g0, cols = _concat(pieces, names)
    else:
        g0, cols = 0, {n: np.zeros(0, np.int64 if n == "t" else np.float64) for n in names}
    t = cols["t"].astype(np.int64, copy=False)
    h0, a, b, h1 = halo_bounds(t, p.t_lo, p.t_hi, query.before, query.after)
    part = Partition(p.index, g0 + h0, g0 + a, g0 + b, g0 + h1, p.t_lo, p.t_hi)
    stream = {n: v[h0:h1] for n, v in cols.items()}
    stream["t"] = t[h0:h1]
    samples = None
    if any(v.kind != "detector" for v in query.spec.vetoes):
        samples = store.veto_memo.samples(query.segments, query.spec)
    partial = run_partition(stream, part, query.spec, query.segments, samples_between(
        samples, p.t_lo, p.t_hi))  # fmt: skip
    core = {n: np.ascontiguousarray(cols[n][a:b]) for n in query.gather}
    after = store.stats()
    where = f"{socket.gethostname()}/pid{os.getpid()}"
    return SparkPart(
        p.index, partial, _to_ipc(core), where,
        after.bytes_read - before.bytes_read, after.misses - before.misses,
    )  # fmt: skip


def run_tasks(tasks: Iterable[SparkTask], query: Query) -> Iterator[SparkPart]:
    """``mapPartitions`` body: one Spark partition holds one time partition."""
    for task in tasks:
        yield run_task(task, query)
