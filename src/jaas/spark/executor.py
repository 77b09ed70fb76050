"""Executor side of the Spark backend: file columns, halo pieces, the partition task.

A query runs as one Spark job of two stages over a *persisted* RDD of file columns:

1. ``load_file`` (one Spark partition per index file) reads a file's columns once; the
   RDD is persisted (``MEMORY_ONLY``) and reused by every later query on the same files
   and columns in the SparkContext, whichever executor or Python worker runs the next
   task: a second query with new cuts reads no file. A file that cannot be read becomes
   a ``FileColumns`` with its error (the driver reports its time as lost).
2. ``emit_pieces`` evaluates the query's masks on a file's columns and emits, for every
   time partition whose core or halo reaches into the file, the rows it needs, keyed
   by the partition; Spark moves them to the partition's task (any halo length, across
   executors), where ``run_group`` runs the engine's partition step
   (``jaas.cluster.worker.run_pieces``, as on a Dask worker) and returns the partial
   result with its core columns as Arrow IPC; the driver merges with the engine's
   ``merge``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from jaas.cluster.worker import FileRef, PartTask, Piece, Query, _slice, run_pieces
from jaas.engine.core.partition import PartialResult
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.masks import cached_masks
from jaas.errors import JaasError
from jaas.formats.index import read_index
from jaas.settings import settings

__all__ = [
    "FileColumns",
    "Route",
    "SparkPart",
    "cache",
    "emit_pieces",
    "load_file",
    "run_group",
    "where",
]

_CACHE: ColumnCache | None = None


def cache() -> ColumnCache:
    """This Python worker's cache of evaluated masks and veto samples (``JAAS_CACHE_BYTES``,
    default 1 GiB); the columns themselves live in the persisted RDD."""
    global _CACHE
    if _CACHE is None:
        _CACHE = ColumnCache(settings().cache_bytes or 1 << 30)
    return _CACHE


def where() -> str:
    """This Python worker: ``host/pidN``."""
    return f"{socket.gethostname()}/pid{os.getpid()}"


@dataclass
class FileColumns:
    """One index file's columns as read by an executor, or why it could not be read."""

    index: int  # position in the dataset's files
    path: str
    key: tuple[str, int, int]  # ColumnCache.file_key at reading time (masks are cached by it)
    columns: dict[str, np.ndarray] | None
    error: str = ""
    where: str = ""


def load_file(index: int, path: str, n_events: int, names: tuple[str, ...]) -> FileColumns:
    """Read ``names`` of the file; a missing, corrupt or changed file gives its error."""
    try:
        key = ColumnCache.file_key(path)
        table = read_index(path, list(names))
        cols = {n: table.column(n).to_numpy() for n in names}
        if len(cols["t"]) != n_events:
            raise JaasError(
                f"{path} has {len(cols['t'])} rows, expected {n_events} as when the dataset "
                "was opened; it changed on disk"
            )
    except Exception as exc:  # OSError, FormatError, Arrow errors: the file is lost
        text = str(exc).strip().splitlines()
        return FileColumns(index, path, ("", 0, 0), None, text[0] if text else type(exc).__name__,
                           where())  # fmt: skip
    return FileColumns(index, path, key, cols, "", where())


@dataclass(frozen=True)
class Route:
    """Where one file's rows go in a query: its place in the analysed stream and the
    partitions (index, lo, hi) whose core or halo reaches into it."""

    ref: FileRef
    parts: tuple[tuple[int, int, int], ...]


def emit_pieces(
    fc: FileColumns, query: Query, routes: dict[int, Route]
) -> Iterator[tuple[int, Piece]]:
    """``flatMap`` body: the rows of one file each partition needs, with the masks."""
    route = routes.get(fc.index)
    if route is None:  # lost (or empty) file: not in this query's plan
        return
    if fc.columns is None:
        raise JaasError(f"{fc.path} became unreadable during the query: {fc.error}")
    # only this query's columns: the kept RDD may hold more (earlier queries'), and the
    # engine uses some when present (e.g. muon tracks for the distance since a muon)
    cols = {n: fc.columns[n] for n in dict.fromkeys(("t", *query.names))}
    stream = {**cols, **cached_masks(cache(), fc.key, query.exprs, cols)}
    for index, lo, hi in route.parts:
        yield index, _slice(route.ref.path, route.ref.offset, stream, lo, hi)


@dataclass
class SparkPart:
    """A partition's partial result, its core rows (Arrow IPC) and where it ran."""

    index: int
    partial: PartialResult
    core_ipc: bytes
    where: str

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


def run_group(
    split: int, items: Iterable[tuple[int, Piece]], tasks: list[PartTask], query: Query
) -> Iterator[SparkPart]:
    """``mapPartitionsWithIndex`` body: Spark partition ``split`` holds the pieces of
    time partition ``split``; run the engine on them in time order."""
    pieces = sorted((piece for _, piece in items), key=lambda p: p.start)
    task = tasks[split]
    partial, core = run_pieces(task, query, pieces, cache())
    yield SparkPart(task.index, partial, _to_ipc(core), where())


def status(fc: FileColumns) -> tuple[int, str, str, int]:
    """(file index, error or "", where it was read, bytes held) for the driver."""
    held = sum(int(v.nbytes) for v in fc.columns.values()) if fc.columns else 0
    return fc.index, fc.error, fc.where, held


def _identity(key: Any) -> int:
    return int(key)
