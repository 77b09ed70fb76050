"""Index files: schema, time order, atomicity, deterministic bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jaas.errors import FormatError
from jaas.formats.index import read_index, write_index
from jaas.formats.schema import INDEX_SCHEMA


def _rows(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    for field in INDEX_SCHEMA:
        cols[field.name] = np.zeros(n, dtype=field.type.to_pandas_dtype())
    cols["t"] = rng.integers(0, 10**12, n)
    cols["entry"] = np.arange(n)
    cols["E"] = rng.uniform(0, 10, n).astype(np.float32)
    return cols


def test_written_sorted_by_time_and_typed(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    rows = _rows(1000)
    write_index(rows, path, metadata={"run": "7"})
    table = read_index(path)
    assert table.schema.equals(INDEX_SCHEMA, check_metadata=False)
    t = table.column("t").to_numpy()
    assert np.all(np.diff(t) >= 0)
    # rows keep their content when reordered
    order = np.argsort(rows["t"], kind="stable")
    np.testing.assert_array_equal(table.column("entry").to_numpy(), rows["entry"][order])
    assert pq.read_schema(path).metadata[b"run"] == b"7"


def test_same_content_same_bytes(tmp_path: Path) -> None:
    write_index(_rows(500), tmp_path / "a.parquet")
    write_index(_rows(500), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_missing_column_named_and_nothing_written(tmp_path: Path) -> None:
    rows = _rows(10)
    del rows["E"]
    with pytest.raises(FormatError, match=r"\['E'\]"):
        write_index(rows, tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_file_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(FormatError, match=r"bad\.parquet"):
        read_index(bad)


def test_written_files_get_umask_permissions(tmp_path: Path) -> None:
    import os
    import stat

    write_index(_rows(5), tmp_path / "p.parquet")
    mode = stat.S_IMODE(os.stat(tmp_path / "p.parquet").st_mode)
    mask = os.umask(0o022)
    os.umask(mask)
    assert mode == 0o666 & ~mask  # not mkstemp's 0600: other users can read the data
