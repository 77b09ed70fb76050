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
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from jaas._io import adler32_file, atomic_path
from jaas.formats.index import INDEX_PARQUET_OPTIONS, ROW_GROUP_SIZE
from jaas.formats.schema import INDEX_SCHEMA, TRUTH_SCHEMA
from jaas.sim.truth import ROLES, SOURCES, TRACK_COLUMNS, Events

__all__ = [
    "INDEX_PARQUET",
    "TRUTH_PARQUET",
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


def _write(table: pa.Table, path: str | os.PathLike[str], opts: dict[str, Any]) -> Written:
    """Write ``table`` to ``path`` (atomically); its size and adler32.

    The checksum is read back from the page cache. (Encoding into a buffer in memory and
    summing that instead was measured too: runs took 0.59 or 0.72 s of CPU per 10^6
    events, against a steady 0.61 this way; the cause of the slow runs was not found.)
    """
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE, **opts)
        return tmp.stat().st_size, adler32_file(tmp)


def write_index_chunks(
    path: str | os.PathLike[str],
    cols: Sequence[dict[str, npt.NDArray[Any]]],
    *,
    run: int,
    file_id: int,
    metadata: dict[str, str],
) -> Written:
    """Write the time-sorted index rows ``cols`` (one dict per batch) as one index file.

    ``cols`` hold the INDEX_SCHEMA columns except run, file_id and entry, which are
    filled here; ``metadata`` joins the schema's own metadata. Returns the file's
    (bytes, adler32).
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
    return _write(table, path, INDEX_PARQUET)


def write_truth_chunks(
    path: str | os.PathLike[str],
    parts: Sequence[Events],
    *,
    run: int,
    first_id: int,
    file_seq: int,
) -> Written:
    """Write the truth events ``parts`` (in file order) as one truth file of TRUTH_SCHEMA.

    Event ids run from ``first_id`` on, entries from 0: the rows are the file's events.
    Returns the file's (bytes, adler32).
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
    return _write(table, path, TRUTH_PARQUET)
