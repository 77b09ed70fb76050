"""Index files: one Parquet file per ESD file, time-sorted rows of INDEX_SCHEMA columns.

The index is what analyses scan; its (file_id, entry) pair redirects to the full event.
Row groups are large (scans read whole columns) and carry min/max statistics so that a
time-range query skips row groups and files without reading them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jaas._io import atomic_path
from jaas.errors import FormatError
from jaas.formats.schema import INDEX_SCHEMA

__all__ = ["ROW_GROUP_SIZE", "read_index", "write_index"]

ROW_GROUP_SIZE = 1 << 20  # rows; ~25 MB of index columns per group


def write_index(
    table: pa.Table | dict[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, str] | None = None,
    row_group_size: int = ROW_GROUP_SIZE,
) -> None:
    """Write ``table`` as an index file at ``path``: cast to INDEX_SCHEMA, sorted by time.

    Written atomically (temporary name, then rename) with zstd compression and column
    statistics. Missing optional columns are an error naming them; the output bytes depend
    only on the content (no timestamps), so re-running a step gives an identical file.

    Args:
        table: the rows, as an Arrow table or a dict of equal-length numpy arrays.
        path: output ``.parquet`` path.
        metadata: extra key/value pairs stored in the file's schema metadata.
        row_group_size: rows per Parquet row group.
    """
    if isinstance(table, dict):
        table = pa.table(table)
    missing = [name for name in INDEX_SCHEMA.names if name not in table.column_names]
    if missing:
        raise FormatError(f"index table lacks columns {missing}", path=path)
    table = table.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)
    t = table.column("t")
    if len(t) > 1 and not bool(pc.all(pc.greater_equal(t[1:], t[:-1])).as_py()):
        order = pc.sort_indices(table, sort_keys=[("t", "ascending"), ("entry", "ascending")])
        table = table.take(order)
    meta = dict(INDEX_SCHEMA.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            row_group_size=row_group_size,
            write_statistics=True,
        )


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
        try:
            tables.append(pq.read_table(p, columns=list(columns) if columns else None))
        except (OSError, pa.ArrowInvalid) as exc:
            raise FormatError(f"not a readable index file: {exc}", path=p) from exc
    if not tables:
        return INDEX_SCHEMA.empty_table().select(list(columns) if columns else INDEX_SCHEMA.names)
    return pa.concat_tables(tables)
