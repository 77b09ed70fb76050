"""ESD -> index step: schema, time order, derived columns, entry mapping, HDF5, idempotency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaas._version import __version__
from jaas.errors import ConfigError
from jaas.formats.esd import write_esd
from jaas.formats.index import index_metadata, read_index
from jaas.formats.indexing import build_index, default_index_path
from jaas.formats.schema import INDEX_SCHEMA, EventClass
from tests.formats.test_esd import make_esd, meta


@pytest.fixture
def esd(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    cols = make_esd(2000, seed=21)
    path = tmp_path / "run000004_0003.esd.root"
    write_esd(cols, path, meta=meta(run=4, file_seq=3))
    return path, cols


def test_index_rows_sorted_typed_and_mapped_to_entries(
    esd: tuple[Path, dict[str, np.ndarray]],
) -> None:
    path, cols = esd
    res = build_index(path, file_id=17)
    assert res.output == path.parent / "run000004_0003.index.parquet"
    assert res.n_events == 2000 and not res.skipped
    table = read_index(res.output)
    assert table.schema.equals(INDEX_SCHEMA, check_metadata=False)
    t = table.column("t").to_numpy()
    assert np.all(np.diff(t) >= 0)
    assert (res.t_min, res.t_max) == (int(cols["t"].min()), int(cols["t"].max()))
    entry = table.column("entry").to_numpy()
    assert sorted(entry.tolist()) == list(range(2000))
    # each row carries the ESD values of its entry
    np.testing.assert_array_equal(t, cols["t"][entry])
    np.testing.assert_array_equal(table.column("E").to_numpy(), cols["E"][entry].astype(np.float32))
    x, y, z = (cols[c][entry] for c in "xyz")
    np.testing.assert_allclose(
        table.column("r").to_numpy(), np.sqrt(x * x + y * y + z * z), rtol=1e-6
    )
    muon = np.isin(cols["cls"][entry], [EventClass.MUON, EventClass.WP_ONLY])
    np.testing.assert_array_equal(table.column("muon").to_numpy(), muon)
    assert muon.any() and not muon.all()
    assert set(table.column("file_id").to_pylist()) == {17}
    assert set(table.column("run").to_pylist()) == {4}  # from the ESD metadata


def test_metadata_records_source_and_versions(esd: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, _ = esd
    res = build_index(path, file_id=5, run=99)
    m = index_metadata(res.output)
    assert m["source"] == path.name and m["file_id"] == "5" and m["run"] == "99"
    assert m["software_version"] == __version__ and m["file_seq"] == "3"
    assert set(read_index(res.output, columns=["run"]).column("run").to_pylist()) == {99}


def test_hdf5_option_reads_back_identically(esd: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, _ = esd
    pq_res = build_index(path, file_id=2)
    h5_res = build_index(path, file_id=2, fmt="hdf5")
    assert h5_res.output.name == "run000004_0003.index.h5"
    assert h5_res.output.read_bytes()[:4] == b"\x89HDF"
    a, b = read_index(pq_res.output), read_index(h5_res.output)
    assert b.schema.equals(INDEX_SCHEMA, check_metadata=False)
    for name in INDEX_SCHEMA.names:  # (NaN track columns: compare with numpy)
        np.testing.assert_array_equal(a.column(name).to_numpy(), b.column(name).to_numpy(), name)
    sub = read_index(h5_res.output, columns=["t", "entry"])
    assert sub.column_names == ["t", "entry"]
    assert index_metadata(h5_res.output)["file_id"] == "2"
    both = read_index([pq_res.output, h5_res.output], columns=["t"])
    assert both.num_rows == 4000


def test_hdf5_is_chunked_and_compressed(esd: tuple[Path, dict[str, np.ndarray]]) -> None:
    h5py = pytest.importorskip("h5py")
    path, _ = esd
    out = build_index(path, file_id=2, fmt="hdf5").output
    with h5py.File(out, "r") as f:
        assert set(f) == set(INDEX_SCHEMA.names)
        assert f["t"].chunks is not None and f["t"].compression == "gzip"
        assert f["t"].attrs["unit"] == "ns"


@pytest.mark.parametrize("fmt", ["parquet", "hdf5"])
def test_rerun_is_skipped_and_output_deterministic(
    esd: tuple[Path, dict[str, np.ndarray]], fmt: str
) -> None:
    path, _ = esd
    first = build_index(path, file_id=8, fmt=fmt)
    data = first.output.read_bytes()
    again = build_index(path, file_id=8, fmt=fmt)
    assert again.skipped and again.n_events == first.n_events and again.t_min == first.t_min
    forced = build_index(path, file_id=8, fmt=fmt, force=True)
    assert not forced.skipped and forced.output.read_bytes() == data
    # another file id is another content
    assert not build_index(path, file_id=9, fmt=fmt).skipped


def test_empty_esd(tmp_path: Path) -> None:
    path = tmp_path / "e.esd.root"
    write_esd(make_esd(0), path, meta=meta())
    res = build_index(path, file_id=1)
    assert res.n_events == 0 and res.t_min is None
    assert read_index(res.output).num_rows == 0


def test_bad_format_refused(esd: tuple[Path, dict[str, np.ndarray]]) -> None:
    with pytest.raises(ConfigError, match="unknown index format 'csv'"):
        build_index(esd[0], file_id=1, fmt="csv")
    assert default_index_path("a/b.esd.root", "o", "hdf5") == Path("o/b.index.h5")
