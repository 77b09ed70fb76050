"""Index files: one Parquet file per ESD file, time-sorted rows of INDEX_SCHEMA columns.

The index is what analyses scan; its (file_id, entry) pair redirects to the full event.
Row groups are large (scans read whole columns) and carry min/max statistics so that a
time-range query skips row groups and files without reading them.

HDF5 is an option (``fmt="hdf5"``, needs h5py): one dataset per column at the root of the
file, chunked and gzip-compressed, units as dataset attributes, metadata as file
attributes. ``read_index`` recognises either format by its first bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jaas._io import atomic_path
from jaas.errors import ConfigError, FormatError
from jaas.formats.schema import INDEX_SCHEMA

__all__ = [
    "HDF5_CHUNK",
    "INDEX_PARQUET_OPTIONS",
    "ROW_GROUP_SIZE",
    "column_to_numpy",
    "index_column_names",
    "index_metadata",
    "is_hdf5",
    "read_index",
    "read_parquet_index",
    "write_index",
]

ROW_GROUP_SIZE = 1 << 20  # rows; ~25 MB of index columns per group
HDF5_CHUNK = 1 << 16  # rows per HDF5 chunk
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

# How every index file is written (``pyarrow.parquet.write_table`` keywords): chosen for
# the first query of a fresh process, which decodes the columns it scans (issue 13; the
# measured table of codecs and encodings is in bench/RESULTS.md, "Index file settings").
# LZ4 decodes ~2x faster than zstd for ~10 % more bytes; the time-sorted ``t`` and the
# ``entry`` counter are delta-encoded (a few bits per row instead of 8 bytes to decompress);
# dictionaries only for the few-valued columns (on floats they cost time and bytes).
# Files written with other settings (e.g. the zstd files of jaas <= wave 4) read the same.
INDEX_PARQUET_OPTIONS: Final[Mapping[str, Any]] = MappingProxyType(
    {
        "compression": "lz4",
        "use_dictionary": ("run", "file_id", "cls", "quality"),
        "column_encoding": {"t": "DELTA_BINARY_PACKED", "entry": "DELTA_BINARY_PACKED"},
        "write_statistics": True,
    }
)


def write_index(
    table: pa.Table | dict[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, str] | None = None,
    row_group_size: int = ROW_GROUP_SIZE,
    fmt: str = "parquet",
    extra_columns: Sequence[str] = (),
) -> None:
    """Write ``table`` as an index file at ``path``: cast to INDEX_SCHEMA, sorted by time.

    Written atomically (temporary name, then rename) with ``INDEX_PARQUET_OPTIONS`` (LZ4,
    delta-encoded times, column statistics). Missing optional columns are an error naming
    them; the output bytes depend only on the content (no timestamps), so re-running a step
    gives an identical file.

    Args:
        table: the rows, as an Arrow table or a dict of equal-length numpy arrays.
        path: output ``.parquet`` path.
        metadata: extra key/value pairs stored in the file's schema metadata.
        row_group_size: rows per Parquet row group.
        fmt: ``"parquet"`` (default) or ``"hdf5"`` (chunks of ``HDF5_CHUNK`` rows).
        extra_columns: columns of ``table`` outside INDEX_SCHEMA to keep, after it.
    """
    if fmt not in ("parquet", "hdf5"):
        raise ConfigError(f"unknown index format {fmt!r}; use 'parquet' or 'hdf5'")
    if isinstance(table, dict):
        table = pa.table(table)
    missing = [name for name in INDEX_SCHEMA.names if name not in table.column_names]
    if missing:
        raise FormatError(f"index table lacks columns {missing}", path=path)
    extras = [table.column(name) for name in extra_columns]
    table = table.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    for name, column in zip(extra_columns, extras, strict=True):
        table = table.append_column(name, column)
    t = table.column("t")
    if len(t) > 1 and not bool(pc.all(pc.greater_equal(t[1:], t[:-1])).as_py()):
        order = pc.sort_indices(table, sort_keys=[("t", "ascending"), ("entry", "ascending")])
        table = table.take(order)
    if fmt == "hdf5":
        _write_hdf5(table, path, metadata or {})
        return
    meta = dict(INDEX_SCHEMA.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, **_parquet_options())


def _parquet_options() -> dict[str, Any]:
    """``INDEX_PARQUET_OPTIONS`` as fresh keyword arguments (pyarrow wants lists, dicts)."""
    opts = dict(INDEX_PARQUET_OPTIONS)
    opts["use_dictionary"] = list(opts["use_dictionary"])
    opts["column_encoding"] = dict(opts["column_encoding"])
    return opts


def read_index(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Read one or more index files (concatenated in the given order).

    Raises:
        FormatError: a file is not a readable Parquet index (the file is named).
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    tables = []
    for p in paths:
        if is_hdf5(p):
            tables.append(_read_hdf5(p, columns))
            continue
        tables.append(read_parquet_index(p, columns))
    if not tables:
        return INDEX_SCHEMA.empty_table().select(list(columns) if columns else INDEX_SCHEMA.names)
    return pa.concat_tables(tables)


_THREADS_MIN_ROWS = 1 << 18  # smaller files are decoded on the calling thread


def read_parquet_index(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    use_threads: bool | None = None,
) -> pa.Table:
    """``columns`` (default all) of one Parquet index file.

    Read through ``pyarrow.parquet.ParquetFile``, not ``read_table``: the latter imports
    ``pyarrow.dataset``, which imports pandas (~0.6 s of a fresh process's first query).
    ``use_threads`` None: Arrow's threads only for files of at least 2**18 rows (for files
    of 10,000 rows they cost more CPU than they save: 7 such files, 5 columns, 3.8 ms of
    CPU with threads and the column check on the Arrow schema, 2.1 ms without).

    Raises:
        FormatError: the file is not a readable Parquet file, or lacks a column (named).
    """
    try:
        with pq.ParquetFile(path) as f:
            if use_threads is None:
                use_threads = f.metadata.num_rows >= _THREADS_MIN_ROWS
            table = f.read(
                columns=list(columns) if columns is not None else None, use_threads=use_threads
            )
    except (OSError, pa.ArrowInvalid) as exc:
        raise FormatError(f"not a readable index file: {exc}", path=path) from exc
    if columns is not None:  # a column the file lacks is left out by pyarrow, silently
        names = set(table.column_names)
        missing = [c for c in columns if c not in names]
        if missing:
            raise FormatError(f"index file has no column(s) {missing}", path=path)
    return table


def column_to_numpy(
    column: pa.ChunkedArray | pa.Array, out: np.ndarray | None = None
) -> np.ndarray:
    """The values of an Arrow column as one numpy array (into ``out`` if given).

    Null-free fixed-width and boolean chunks are copied from their Arrow buffers: pyarrow's
    own ``to_numpy`` imports pandas on first use (~0.5 s of a fresh process). Other chunks
    (nulls, strings) go through ``to_numpy``. ``out`` must have ``len(column)`` items; values
    are cast to its dtype as numpy assignment does.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if out is None:
        if column.null_count:  # pyarrow's choice of type (e.g. float64 with NaN for ints)
            return np.asarray(column.to_numpy(zero_copy_only=False))
        out = np.empty(len(column), dtype=np.dtype(column.type.to_pandas_dtype()))
    if len(out) != len(column):
        raise ValueError(f"out has {len(out)} items for a column of {len(column)}")
    pos = 0
    for chunk in chunks:
        n = len(chunk)
        out[pos : pos + n] = _chunk_values(chunk)
        pos += n
    return out


def _chunk_values(chunk: pa.Array) -> np.ndarray:
    n, typ = len(chunk), chunk.type
    if chunk.null_count == 0 and n:
        data = chunk.buffers()[1]
        if pa.types.is_boolean(typ):
            first = chunk.offset // 8
            nbytes = (chunk.offset % 8 + n + 7) // 8
            bits = np.frombuffer(data, np.uint8, count=nbytes, offset=first)
            skip = chunk.offset % 8
            return np.unpackbits(bits, bitorder="little")[skip : skip + n].view(np.bool_)
        if pa.types.is_integer(typ) or pa.types.is_floating(typ):
            dtype = np.dtype(typ.to_pandas_dtype())
            return np.frombuffer(data, dtype, count=n, offset=chunk.offset * dtype.itemsize)
    return np.asarray(chunk.to_numpy(zero_copy_only=False))


def index_column_names(path: str | os.PathLike[str]) -> list[str]:
    """Column names of an index file, without reading any column."""
    if is_hdf5(path):
        with _h5py().File(path, "r") as f:
            return [str(k) for k in f]
    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowInvalid) as exc:
        raise FormatError(f"not a readable index file: {exc}", path=path) from exc


def index_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The key/value metadata of an index file (Parquet schema metadata or HDF5 attributes)."""
    if is_hdf5(path):
        h5py = _h5py()
        with h5py.File(path, "r") as f:
            return {str(k): str(v) for k, v in f.attrs.items()}
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise FormatError(f"not a readable index file: {exc}", path=path) from exc
    return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW:")}


def is_hdf5(path: str | os.PathLike[str]) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC
    except OSError:
        return False


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ConfigError(
            "HDF5 index files need the 'h5py' package: pip install 'jaas[hdf5]'"
        ) from None
    return h5py


def _write_hdf5(table: pa.Table, path: str | os.PathLike[str], metadata: dict[str, str]) -> None:
    h5py = _h5py()
    n = table.num_rows
    # track_times=False and a fixed layout: the bytes depend only on the content
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as f:
        for key, value in sorted(metadata.items()):
            f.attrs[key] = value
        for fld in INDEX_SCHEMA:
            data = table.column(fld.name).to_numpy()
            ds = f.create_dataset(
                fld.name,
                data=data,
                chunks=(min(HDF5_CHUNK, n),) if n else None,
                compression="gzip" if n else None,
                compression_opts=4 if n else None,
                shuffle=bool(n),
                track_times=False,
            )
            for key, value in (fld.metadata or {}).items():
                ds.attrs[key.decode()] = value.decode()


def _read_hdf5(path: str | os.PathLike[str], columns: Sequence[str] | None) -> pa.Table:
    h5py = _h5py()
    names = list(columns) if columns else INDEX_SCHEMA.names
    try:
        with h5py.File(path, "r") as f:
            missing = [c for c in names if c not in f]
            if missing:
                raise FormatError(f"HDF5 index lacks datasets {missing}", path=path)
            arrays = {c: f[c][()] for c in names}
    except OSError as exc:
        raise FormatError(f"not a readable HDF5 index file: {exc}", path=path) from exc
    schema = pa.schema([INDEX_SCHEMA.field(c) for c in names])
    return pa.table(arrays).cast(schema)
