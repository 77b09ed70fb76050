"""Datasets over index files: cheap description, good time, lost files, cached columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import open_dataset
from jaas.errors import ConfigError
from jaas.formats.index import write_index
from jaas.formats.schema import INDEX_SCHEMA

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns


def _write(path: Path, run: int, seq: int, t: np.ndarray) -> None:
    n = len(t)
    cols = {f.name: np.zeros(n, dtype=f.type.to_pandas_dtype()) for f in INDEX_SCHEMA}
    cols.update(run=np.full(n, run), file_id=np.full(n, seq), entry=np.arange(n), t=t)
    cols["E"] = np.linspace(0.5, 10, n, dtype=np.float32)
    write_index(cols, path, metadata={"file_seq": str(seq)})


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "index").mkdir()
    sec = 10**9
    for seq in range(4):
        t = T0 + seq * 100 * sec + np.arange(0, 100 * sec, sec // 10)  # 10 Hz, 100 s per file
        if seq == 2:
            continue  # a missing file: its 100 s are not good time
        _write(tmp_path / "index" / f"run000001_{seq:04d}.parquet", 1, seq, t)
    meta = {"run": 1, "start_ns": T0, "end_ns": T0 + 400 * sec}
    (tmp_path / "run000001.json").write_text(json.dumps(meta))
    return tmp_path


def test_describe_without_reading_columns(run_dir: Path) -> None:
    cache = ColumnCache()
    ds = open_dataset(run_dir, cache=cache)
    assert ds.runs == [1]
    assert ds.n_events == 3000
    assert len(ds.files) == 3
    assert cache.stats().misses == 0  # opening read footers only
    # run span 400 s minus the missing file's span (from the last event of file 1
    # to the first event of file 3)
    lost = ds.lost[0]
    assert "2" in lost.what and lost.reason == "missing"
    assert lost.seconds == pytest.approx(100.1 - 1e-9, abs=1e-6)
    assert ds.good_time == pytest.approx(400 - lost.seconds)
    text = ds.info()
    assert "3,000" in text and "missing" in text
    assert "<table>" in ds._repr_html_()


def test_columns_time_ordered_and_cached(run_dir: Path) -> None:
    cache = ColumnCache()
    ds = open_dataset(run_dir, cache=cache)
    cols = ds.load(["E"])
    assert np.all(np.diff(cols["t"]) > 0)
    assert len(cols["E"]) == 3000
    first = cache.stats()
    assert first.misses == 2  # t and E of the dataset, read from 3 files
    assert first.hits == 0
    ds.load(["E", "t"])
    second = cache.stats()
    assert second.misses == first.misses  # second query: no I/O
    assert second.bytes_read == first.bytes_read
    assert second.hits == 2


def test_cache_budget_evicts_least_recent(run_dir: Path) -> None:
    cache = ColumnCache(budget=30_000)  # holds t (24 kB) or E (12 kB), not both
    ds = open_dataset(run_dir, cache=cache)
    ds.load(["E"])
    assert cache.stats().bytes_cached <= 30_000
    ds.load(["E"])
    assert cache.stats().misses > 2  # evicted columns were re-read


def test_unknown_column_suggests(run_dir: Path) -> None:
    ds = open_dataset(run_dir)
    with pytest.raises(ConfigError, match="did you mean 'E'"):
        ds.load(["Ee"])


def test_empty_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no index files"):
        open_dataset(tmp_path)


def test_hdf5_index_files_open_like_parquet(run_dir: Path, tmp_path: Path) -> None:
    from jaas.formats.index import read_index

    h5dir = tmp_path / "h5"
    h5dir.mkdir()
    for p in sorted((run_dir / "index").glob("*.parquet")):
        table = read_index(p)
        seq = p.stem.split("_")[-1]
        write_index(table, h5dir / f"{p.stem}.h5", metadata={"file_seq": str(int(seq))},
                    fmt="hdf5")  # fmt: skip
    parquet = open_dataset(run_dir / "index", cache=ColumnCache())
    hdf5 = open_dataset(h5dir, cache=ColumnCache())
    assert [(f.n_events, f.t_min, f.t_max, f.seq) for f in hdf5.files] == [
        (f.n_events, f.t_min, f.t_max, f.seq) for f in parquet.files
    ]
    assert hdf5.lost[0].what == parquet.lost[0].what  # the missing file is seen in both
    np.testing.assert_array_equal(hdf5.load(["E"])["E"], parquet.load(["E"])["E"])
