"""Index files are written for fast reading (INDEX_PARQUET_OPTIONS), files written with
the earlier settings still read the same, and a fresh process's query imports no pandas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import jaas
from jaas.engine.session.cache import ColumnCache
from jaas.errors import FormatError
from jaas.formats.index import INDEX_PARQUET_OPTIONS, column_to_numpy, read_index, write_index
from jaas.formats.schema import INDEX_SCHEMA
from jaas.sim import SimConfig, simulate

# what jaas wrote before issue 13 (wave 4): zstd, dictionaries on the few-valued columns
_OLD_SETTINGS = {
    "compression": "zstd",
    "use_dictionary": ["run", "file_id", "cls", "quality"],
    "write_statistics": True,
}


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cold-sim")
    cfg = SimConfig(
        run=5,
        duration_s=4 * 3600,
        seed=3,
        mode="index",
        scale={"reactor_ibd": 40.0},
        max_events_per_file=60_000,  # several files: pairs cross file boundaries
    )
    simulate(cfg, out)
    return out


def _index_files(run: Path) -> list[Path]:
    files = sorted((run / "index").glob("*.parquet"))
    assert len(files) >= 3
    return files


def test_index_files_use_the_chosen_settings(sim_run: Path) -> None:
    meta = pq.ParquetFile(_index_files(sim_run)[0]).metadata
    by_name = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i)
        for i in range(meta.num_columns)
    }
    assert INDEX_PARQUET_OPTIONS["compression"] == "lz4"
    assert {c.compression for c in by_name.values()} == {"LZ4"}
    for name in ("t", "entry"):
        assert "DELTA_BINARY_PACKED" in by_name[name].encodings, name
    assert "RLE_DICTIONARY" in by_name["cls"].encodings
    assert "RLE_DICTIONARY" not in by_name["E"].encodings  # no dictionary on floats
    assert by_name["t"].statistics is not None and by_name["t"].statistics.has_min_max


def test_old_settings_read_the_same_columns_and_pairs(sim_run: Path, tmp_path: Path) -> None:
    """The same rows written with the wave-4 settings (zstd, plain int64 times) in one
    dataset, and files of both kinds mixed in another: identical columns and pairs."""
    old = tmp_path / "old"
    mixed = tmp_path / "mixed"
    for d in (old, mixed):
        shutil.copytree(sim_run, d)
    for i, path in enumerate(_index_files(sim_run)):
        table = pq.read_table(path)
        for d in (old, mixed) if i % 2 == 0 else (old,):
            target = d / "index" / path.name
            target.unlink()
            pq.write_table(table, target, row_group_size=1 << 20, **_OLD_SETTINGS)
    assert pq.ParquetFile(_index_files(old)[0]).metadata.row_group(0).column(0).compression == (
        "ZSTD"
    )
    names = list(INDEX_SCHEMA.names)
    new_cols = read_index(_index_files(sim_run), names)
    for d in (old, mixed):
        got_cols = read_index(_index_files(d), names)
        assert got_cols.schema == new_cols.schema
        for name in names:  # NaN track columns: compare as numpy (NaN == NaN)
            np.testing.assert_array_equal(
                got_cols.column(name).to_numpy(), new_cols.column(name).to_numpy(), name
            )
    want = jaas.open(sim_run, cache=ColumnCache()).ibd()
    assert want.n_pairs > 20
    for d in (old, mixed):
        got = jaas.open(d, cache=ColumnCache()).ibd()
        np.testing.assert_array_equal(got.result.prompt, want.result.prompt)
        np.testing.assert_array_equal(got.result.delayed, want.result.delayed)
        assert got.exposure == want.exposure


def test_write_index_output_is_deterministic(sim_run: Path, tmp_path: Path) -> None:
    table = pq.read_table(_index_files(sim_run)[0])
    write_index(table, tmp_path / "a.parquet")
    write_index(table, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_read_errors_name_the_file_and_column(sim_run: Path, tmp_path: Path) -> None:
    path = _index_files(sim_run)[0]
    with pytest.raises(FormatError, match=r"no column.*'nope'") as err:
        read_index(path, ["t", "nope"])
    assert str(path) in str(err.value)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    with pytest.raises(FormatError, match="not a readable index file") as err:
        read_index(bad, ["t"])
    assert "bad.parquet" in str(err.value)


def test_fresh_process_query_imports_no_pandas(sim_run: Path) -> None:
    code = (
        "import sys, jaas\n"
        f"r = jaas.open({str(sim_run)!r}).ibd()\n"
        "assert r.n_pairs > 0, r.n_pairs\n"
        "print('pandas' in sys.modules, 'matplotlib' in sys.modules)\n"
        "print(type(r.pairs).__module__.split('.')[0])\n"  # the table still is pandas
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    ).stdout.split("\n")
    assert out[0] == "False False", out
    assert out[1] == "pandas", out


@pytest.mark.parametrize(
    "column",
    [
        pa.chunked_array([[True, False, True] * 7, [False, True]]).slice(5, 14),
        pa.array([True, False] * 9).slice(3),
        pa.chunked_array([np.arange(10, dtype=np.int64), np.arange(3, dtype=np.int64)]).slice(2),
        pa.array(np.linspace(0, 1, 11, dtype=np.float32)).slice(4, 5),
        pa.array([1.5, None, 3], pa.float32()),  # nulls: through pyarrow (NaN)
        pa.array(np.array([250, 3, 7], np.uint8)),
    ],
)
def test_column_to_numpy_equals_pyarrow(column: pa.Array | pa.ChunkedArray) -> None:
    want = column.to_numpy(zero_copy_only=False)
    got = column_to_numpy(column)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    into = np.zeros(len(column), np.float64)  # cast on assignment, as numpy does
    column_to_numpy(column, into)
    np.testing.assert_array_equal(into, want.astype(np.float64))
    with pytest.raises(ValueError, match="items"):
        column_to_numpy(column, np.zeros(len(column) + 1))
