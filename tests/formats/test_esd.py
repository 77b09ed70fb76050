"""ESD files: write/read round trip, entry selection, metadata, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import uproot

from jaas._version import __version__
from jaas.errors import FormatError
from jaas.formats.esd import ESD_COLUMNS, default_esd_path, esd_meta, read_esd, write_esd
from jaas.formats.schema import EventClass

T0 = 1_700_000_000 * 10**9


def make_esd(n: int, seed: int = 1, event_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Truth-like reconstructed events: mostly point-like, some muons with a track."""
    rng = np.random.default_rng(seed)
    cls = rng.choice(
        np.array([EventClass.POINT, EventClass.MUON, EventClass.WP_ONLY], np.uint8),
        n,
        p=[0.9, 0.06, 0.04],
    )
    tracked = (cls == EventClass.MUON) & (rng.random(n) < 0.8)
    track = {
        c: np.where(tracked, rng.uniform(-17, 17, n), np.nan) for c in ESD_COLUMNS if c[0] == "m"
    }
    cols: dict[str, np.ndarray] = {
        "event_id": np.arange(n, dtype=np.uint64) if event_ids is None else event_ids,
        # not time-sorted on purpose: the index must sort
        "t": T0 + rng.integers(0, 3600 * 10**9, n),
        "E": rng.exponential(3.0, n),
        "x": rng.uniform(-17, 17, n),
        "y": rng.uniform(-17, 17, n),
        "z": rng.uniform(-17, 17, n),
        "pe": rng.exponential(4000.0, n),
        "nhit": rng.integers(0, 17612, n),
        "cls": cls,
        "wp": cls != EventClass.POINT,
        "showering": (cls == EventClass.MUON) & (rng.random(n) < 0.1),
        "tracked": tracked,
        "quality": rng.integers(0, 3, n),
        **track,
    }
    return cols


def meta(**kw: object) -> dict[str, object]:
    return {
        "run": 1,
        "file_seq": 0,
        "parent": "run000001_0000.rtraw.root",
        "calib_version": "c1",
        **kw,
    }


def test_round_trip_types_and_values(tmp_path: Path) -> None:
    cols = make_esd(1000)
    path = tmp_path / "run000001_0000.esd.root"
    stored = write_esd(cols, path, meta=meta(), basket_events=128)
    got = read_esd(path)
    assert isinstance(got, dict) and list(got) == list(ESD_COLUMNS)
    for name, dtype in ESD_COLUMNS.items():
        assert got[name].dtype == dtype, name
        np.testing.assert_array_equal(got[name], np.asarray(cols[name]).astype(dtype), name)
    assert np.isnan(got["mx0"][~got["tracked"]]).all()
    assert stored["n_events"] == 1000 and stored["t_min"] == int(cols["t"].min())
    tree = uproot.open(path)["esd"]
    assert tree["E"].num_baskets == 8  # 1000 entries in baskets of 128


def test_metadata(tmp_path: Path) -> None:
    path = tmp_path / "e.esd.root"
    write_esd(make_esd(10), path, meta=meta(calib_version="c7"))
    m = esd_meta(path)
    assert m["format"] == "esd" and m["calib_version"] == "c7" and m["run"] == 1
    assert m["parent"] == "run000001_0000.rtraw.root" and m["software_version"] == __version__


def test_selected_entries_and_columns_in_given_order(tmp_path: Path) -> None:
    cols = make_esd(700, seed=2)
    path = tmp_path / "e.esd.root"
    write_esd(cols, path, meta=meta(), basket_events=64)
    entries = [650, 2, 2, 64, 63, 0]
    got = read_esd(path, entries=entries, columns=["t", "E", "cls"])
    assert isinstance(got, dict) and list(got) == ["t", "E", "cls"]
    np.testing.assert_array_equal(got["t"], cols["t"][entries])
    np.testing.assert_array_equal(got["E"], cols["E"][entries].astype(np.float32))
    table = read_esd(path, entries=entries, library="pa")
    assert isinstance(table, pa.Table) and table.num_rows == len(entries)
    assert table.column("event_id").to_pylist() == entries


def test_arrow_table_input(tmp_path: Path) -> None:
    cols = make_esd(50, seed=3)
    path = tmp_path / "e.esd.root"
    write_esd(pa.table(cols), path, meta=meta())
    np.testing.assert_array_equal(read_esd(path, columns=["t"])["t"], cols["t"])  # type: ignore[index]


def test_missing_column_is_named_and_nothing_written(tmp_path: Path) -> None:
    cols = make_esd(5)
    del cols["pe"]
    with pytest.raises(FormatError, match=r"\['pe'\]"):
        write_esd(cols, tmp_path / "e.esd.root", meta=meta())
    assert list(tmp_path.iterdir()) == []


def test_errors_name_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "e.esd.root"
    write_esd(make_esd(20), path, meta=meta())
    with pytest.raises(FormatError, match=r"e\.esd\.root.*entry 20 out of range"):
        read_esd(path, entries=[20])
    with pytest.raises(FormatError, match="unknown ESD columns"):
        read_esd(path, columns=["energy"])
    with pytest.raises(FormatError, match=r"nope\.root"):
        read_esd(tmp_path / "nope.root")


def test_same_content_same_bytes(tmp_path: Path) -> None:
    for d in ("a", "b"):
        write_esd(make_esd(300, seed=9), tmp_path / d / "e.esd.root", meta=meta())
    assert (tmp_path / "a/e.esd.root").read_bytes() == (tmp_path / "b/e.esd.root").read_bytes()


def test_default_path() -> None:
    assert default_esd_path("/d/run1_0002.rtraw.root") == Path("/d/run1_0002.esd.root")


def test_default_baskets_are_uncompressed_and_entry_reads_decompress_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jaas.formats import _baskets

    cols = make_esd(2000, seed=8)
    plain = tmp_path / "run000001_0000.esd.root"
    packed = tmp_path / "run000001_0001.esd.root"
    write_esd(cols, plain, meta=meta(), basket_events=300)
    write_esd(cols, packed, meta=meta(file_seq=1), basket_events=300, compression="zstd")
    with uproot.open(plain) as f:
        tree = f["esd"]
        assert tree["E"].compressed_bytes == tree["E"].uncompressed_bytes
        assert tree["E"].num_baskets == 7
    assert packed.stat().st_size < plain.stat().st_size
    calls: list[int] = []
    real = _baskets._decompress
    monkeypatch.setattr(_baskets, "_decompress", lambda *a: calls.append(1) or real(*a))
    entries = [1999, 0, 450, 451, 1200]
    got = read_esd(plain, entries=entries)
    assert not calls
    again = read_esd(packed, entries=entries)
    assert calls  # the zstd file's baskets are decompressed, to the same values
    assert isinstance(got, dict) and isinstance(again, dict)
    for name, dtype in ESD_COLUMNS.items():
        expect = np.asarray(cols[name], dtype=dtype)[entries]
        np.testing.assert_array_equal(got[name], expect, err_msg=name)
        np.testing.assert_array_equal(again[name], expect, err_msg=name)
