"""The file columns a SparkContext keeps in executor memory, and its read counters.

Per SparkContext and set of files, one RDD with one Spark partition per index file holds
the files' columns (``jaas.spark.executor.load_file``), persisted ``MEMORY_ONLY``: a later
query on the same files reuses it as long as it needs no other column (then one RDD
with the union of the columns replaces it). Spark evicts it under memory pressure and
recomputes evicted or lost partitions from the files. Two accumulators count the files
and bytes read by the executors: the backend reports them per query.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jaas.engine.session.dataset import IndexFile

__all__ = ["Entry", "columns", "counters", "forget"]

FilesKey = tuple[tuple[str, int, int, int], ...]


@dataclass
class Entry:
    """A persisted RDD of ``FileColumns``, its columns, and whether every file of it was
    read (checked by the first query; later ones skip the check)."""

    rdd: Any
    names: tuple[str, ...]
    checked: bool = False


_LOCK = threading.Lock()
_ENTRIES: dict[tuple[str, FilesKey], Entry] = {}
_COUNTERS: dict[str, tuple[Any, Any]] = {}


def _key(files: Sequence[IndexFile]) -> FilesKey:
    return tuple((os.path.abspath(f.path), f.n_events, f.t_min, f.t_max) for f in files)


def counters(sc: Any) -> tuple[Any, Any]:
    """(files read, bytes read) accumulators of ``sc``."""
    app = str(sc.applicationId)
    with _LOCK:
        if app not in _COUNTERS:
            _COUNTERS[app] = (sc.accumulator(0), sc.accumulator(0))
        return _COUNTERS[app]


def columns(
    sc: Any, files: Sequence[IndexFile], names: Sequence[str]
) -> tuple[Entry, tuple[Any, Any]]:
    """The persisted RDD of ``FileColumns`` of ``files`` holding at least ``names``
    (and "t"), and the read counters."""
    from pyspark import StorageLevel

    from jaas.spark.executor import load_file, status

    app, key = str(sc.applicationId), _key(files)
    files_read, bytes_read = counters(sc)
    with _LOCK:
        entry = _ENTRIES.get((app, key))
        if entry is not None and set(names) <= set(entry.names):
            return entry, (files_read, bytes_read)
        wanted = tuple(sorted({"t", *names, *(entry.names if entry else ())}))
        if entry is not None:
            entry.rdd.unpersist()

        def load(item: tuple[int, str, int]) -> Any:
            fc = load_file(item[0], item[1], item[2], wanted)
            files_read.add(1)
            bytes_read.add(status(fc)[3])
            return fc

        items = [(i, path, n) for i, (path, n, _, _) in enumerate(key)]
        rdd = sc.parallelize(items, len(items)).map(load).persist(StorageLevel.MEMORY_ONLY)
        rdd.setName(f"jaas columns of {len(items)} file(s): {', '.join(wanted)}")
        _ENTRIES[(app, key)] = entry = Entry(rdd, wanted)
        return entry, (files_read, bytes_read)


def forget(sc: Any, files: Sequence[IndexFile] | None = None) -> None:
    """Unpersist the columns of ``files`` (all files: None) kept by ``sc``."""
    app = str(sc.applicationId)
    with _LOCK:
        drop = [k for k in _ENTRIES if k[0] == app and (files is None or k[1] == _key(files))]
        for k in drop:
            _ENTRIES.pop(k).rdd.unpersist()
