"""Parquet output of the index-mode simulation: index and truth files from column chunks.

A file's columns arrive as a list of response batches. They are written as Arrow chunked
arrays, so a file's rows are never concatenated into one copy first, and Parquet writing
releases the GIL (the index and truth files of one output file are written at the same
time on two threads).

The bytes depend only on the values and on the settings below, never on timing or on the
number of threads.
"""

from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from jaas._io import atomic_path
from jaas.formats.index import INDEX_PARQUET_OPTIONS, ROW_GROUP_SIZE
from jaas.formats.schema import INDEX_SCHEMA, TRUTH_SCHEMA
from jaas.sim.truth import ROLES, SOURCES, TRACK_COLUMNS, Events

__all__ = [
    "INDEX_PARQUET",
    "TRUTH_PARQUET",
    "Scratch",
    "Written",
    "write_index_chunks",
    "write_truth_chunks",
]

# Index files: the shared reader-friendly settings of jaas.formats.index (lz4, delta-
# encoded t and entry, dictionaries only on few-valued columns), except that min/max
# statistics are written only where readers use them (t for time pruning, run and file_id
# for the dataset's file table): on every column they cost a fifth of the write.
INDEX_PARQUET: dict[str, Any] = {
    **INDEX_PARQUET_OPTIONS,
    "write_statistics": ["run", "file_id", "entry", "t"],
}

# Truth files: read rarely (matching, efficiencies). The increasing integer columns are
# delta-encoded (smaller and cheaper to write than plain + codec); constant columns (run,
# file_seq) and the two categorical columns use a dictionary (run-length encoded). lz4 only
# where it pays: corr_id (-1 for most events) and the track points (NaN but for muons)
# shrink 3-5x. The energies and vertices are random float32s (lz4 saves < 10 % of their
# bytes at 3x their write cost), so they are stored plain. (Track points without lz4 would
# save ~0.03 s of CPU per 10^6 events in the encoder, but add 15 B per event that the
# checksum and the file write then cost about half of that back.)
_TRUTH_PLAIN = ("E_true", "x", "y", "z")
TRUTH_PARQUET: dict[str, Any] = {
    "compression": {f.name: "none" if f.name in _TRUTH_PLAIN else "lz4" for f in TRUTH_SCHEMA},
    "write_statistics": ["event_id", "t"],
    "use_dictionary": ["run", "file_seq", "source", "role"],
    "column_encoding": {
        "event_id": "DELTA_BINARY_PACKED",
        "entry": "DELTA_BINARY_PACKED",
        "t": "DELTA_BINARY_PACKED",
    },
}

_SOURCE_NAMES = pa.array(SOURCES, pa.string())
_ROLE_NAMES = pa.array(ROLES, pa.string())


def _chunked(parts: Sequence[npt.NDArray[Any]], typ: pa.DataType) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(p, typ) for p in parts], typ)


def _dictionary(parts: Sequence[npt.NDArray[np.int8]], names: pa.Array) -> pa.ChunkedArray:
    typ = pa.dictionary(pa.int8(), pa.string())
    arrays = [pa.DictionaryArray.from_arrays(pa.array(p, pa.int8()), names) for p in parts]
    return pa.chunked_array(arrays, typ)


def _constant(n: int, value: int, dtype: type) -> npt.NDArray[Any]:
    return np.full(n, value, dtype)


Written = tuple[int, str]  # (bytes, adler32 as 8 hex digits) of a written file


class Scratch:
    """Output buffers the encoder reuses, file after file (one per concurrent writer).

    A fresh growable buffer is reallocated and page-faulted as a file grows (~5 % of its
    encoding time); a buffer kept from the previous file is neither.
    """

    def __init__(self) -> None:
        self._free: list[pa.Buffer] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> pa.Buffer:
        """A buffer of at least ``size`` bytes, reused when one is free."""
        with self._lock:
            for i, buf in enumerate(self._free):
                if buf.size >= size:
                    return self._free.pop(i)
            if self._free:
                self._free.pop(0)  # too small: let it go, a larger one replaces it
        return pa.allocate_buffer(size)

    def give(self, buf: pa.Buffer) -> None:
        """Return ``buf`` for the next file."""
        with self._lock:
            self._free.append(buf)


def _encode(table: pa.Table, opts: dict[str, Any], scratch: Scratch | None) -> tuple[Any, Any]:
    """(bytes of the Parquet file, buffer to give back to ``scratch`` or None)."""
    if scratch is not None:
        # plain encoding (+ lz4's worst case) never exceeds the Arrow bytes by much
        buf = scratch.take(int(table.nbytes * 1.1) + (1 << 20))
        writer = pa.FixedSizeBufferWriter(buf)
        try:
            pq.write_table(table, writer, row_group_size=ROW_GROUP_SIZE, **opts)
            return memoryview(buf)[: writer.tell()], buf
        except OSError:  # out of bounds: write it again into a growable buffer
            scratch.give(buf)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=ROW_GROUP_SIZE, **opts)
    return memoryview(sink.getvalue()), None


def _write(
    table: pa.Table, path: str | os.PathLike[str], opts: dict[str, Any], scratch: Scratch | None
) -> Written:
    """Write ``table`` to ``path`` (atomically) from memory; its size and adler32.

    The file is encoded into a buffer first, so its checksum needs no second read of it;
    zlib and the file write release the GIL.
    """
    view, buf = _encode(table, opts, scratch)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(view)
        return len(view), f"{zlib.adler32(view) & 0xFFFFFFFF:08x}"
    finally:
        view.release()
        if buf is not None and scratch is not None:
            scratch.give(buf)


def write_index_chunks(
    path: str | os.PathLike[str],
    cols: Sequence[dict[str, npt.NDArray[Any]]],
    *,
    run: int,
    file_id: int,
    metadata: dict[str, str],
    scratch: Scratch | None = None,
) -> Written:
    """Write the time-sorted index rows ``cols`` (one dict per batch) as one index file.

    ``cols`` hold the INDEX_SCHEMA columns except run, file_id and entry, which are
    filled here; ``metadata`` joins the schema's own metadata. ``scratch`` lends the
    output buffer. Returns the file's (bytes, adler32).
    """
    sizes = [len(c["t"]) for c in cols]
    n = sum(sizes)
    arrays: dict[str, pa.ChunkedArray] = {
        "run": pa.chunked_array([pa.array(_constant(n, run, np.int32))]),
        "file_id": pa.chunked_array([pa.array(_constant(n, file_id, np.int32))]),
        "entry": pa.chunked_array([pa.array(np.arange(n, dtype=np.int64))]),
    }
    for field in INDEX_SCHEMA:
        if field.name not in arrays:
            arrays[field.name] = _chunked([c[field.name] for c in cols], field.type)
    meta = dict(INDEX_SCHEMA.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in metadata.items()})
    table = pa.table(arrays, schema=INDEX_SCHEMA.with_metadata(meta))
    return _write(table, path, INDEX_PARQUET, scratch)


def write_truth_chunks(
    path: str | os.PathLike[str],
    parts: Sequence[Events],
    *,
    run: int,
    first_id: int,
    file_seq: int,
    scratch: Scratch | None = None,
) -> Written:
    """Write the truth events ``parts`` (in file order) as one truth file of TRUTH_SCHEMA.

    Event ids run from ``first_id`` on, entries from 0: the rows are the file's events.
    ``scratch`` lends the output buffer. Returns the file's (bytes, adler32).
    """
    n = sum(len(p) for p in parts)
    plain = ("t", "corr_id", "E_true", "x", "y", "z", *TRACK_COLUMNS, "showering", "wp")
    arrays: dict[str, pa.ChunkedArray] = {
        "run": pa.chunked_array([pa.array(_constant(n, run, np.int32))]),
        "event_id": pa.chunked_array([pa.array(np.arange(first_id, first_id + n))]),
        "file_seq": pa.chunked_array([pa.array(_constant(n, file_seq, np.int32))]),
        "entry": pa.chunked_array([pa.array(np.arange(n, dtype=np.int64))]),
        "source": _dictionary([p["src"] for p in parts], _SOURCE_NAMES),
        "role": _dictionary([p["role"] for p in parts], _ROLE_NAMES),
    }
    for name in plain:
        arrays[name] = _chunked([p[name] for p in parts], TRUTH_SCHEMA.field(name).type)
    table = pa.table({f.name: arrays[f.name] for f in TRUTH_SCHEMA}, schema=TRUTH_SCHEMA)
    return _write(table, path, TRUTH_PARQUET, scratch)
