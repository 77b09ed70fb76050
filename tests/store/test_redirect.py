"""Index -> full event redirect: caller order, right entries, one open per file, errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot

from jaas.errors import FormatError, NotInCatalogError
from jaas.formats import _baskets
from jaas.formats.esd import write_esd
from jaas.formats.events import HitEvents
from jaas.formats.index import read_index
from jaas.formats.indexing import build_index
from jaas.formats.rtraw import take_hits, write_rtraw
from jaas.store.redirect import fetch_events
from tests.formats.test_esd import make_esd, meta
from tests.formats.test_rtraw import make_hits

N = 400  # events per file


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Any]:
    """Three RTRAW/ESD pairs with file ids 10, 11, 12 and distinct event ids."""
    paths: dict[int, tuple[str, str | None]] = {}
    hits: dict[int, HitEvents] = {}
    esd: dict[int, dict[str, np.ndarray]] = {}
    for k, fid in enumerate((10, 11, 12)):
        h = make_hits(N, seed=fid, first_id=k * N)
        rt = tmp_path / f"run000001_{k:04d}.rtraw.root"
        write_rtraw([h], rt, meta={"run": 1, "file_seq": k}, basket_hits=800)
        cols = make_esd(N, seed=100 + fid, event_ids=h.event_id)
        cols["t"] = h.t
        es = tmp_path / f"run000001_{k:04d}.esd.root"
        write_esd(cols, es, meta=meta(file_seq=k, parent=rt.name), basket_events=50)
        paths[fid], hits[fid], esd[fid] = (str(es), str(rt)), h, cols
    return {"paths": paths, "hits": hits, "esd": esd}


def _pairs() -> list[tuple[int, int]]:
    return [(12, 5), (10, 399), (11, 0), (10, 3), (12, 5), (10, 200), (11, 201), (10, 4)]


def test_caller_order_and_values(files: dict[str, Any]) -> None:
    pairs = _pairs()
    got = fetch_events(pairs, paths=files["paths"])
    assert len(got) == len(pairs)
    assert list(zip(got.esd["file_id"], got.esd["entry"], strict=True)) == pairs
    for i, (fid, entry) in enumerate(pairs):
        cols = files["esd"][fid]
        row = got.esd.iloc[i]
        assert row["t"] == cols["t"][entry]
        assert row["E"] == np.float32(cols["E"][entry])
        assert row["cls"] == cols["cls"][entry]
        expect = take_hits(files["hits"][fid], [entry]).event(0)
        event = got.event(i)
        for name in ("pmt", "charge", "time"):
            np.testing.assert_array_equal(event[name], expect[name])
        assert event["event_id"] == expect["event_id"]
    assert got.hits is not None
    assert got.hits.event_id.tolist() == got.esd["event_id"].tolist()


def test_each_file_opened_once(files: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    opened: Counter[str] = Counter()
    real_open = uproot.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened[Path(path).name] += 1
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(uproot, "open", counting_open)
    fetch_events(_pairs(), paths=files["paths"])
    assert len(opened) == 6 and set(opened.values()) == {1}, opened


def test_reads_only_needed_baskets(files: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    spans: list[tuple[int, int]] = []  # (start, stop) byte spans the direct reader reads
    real_decode = _baskets._decode

    def spy_decode(plans: Any, uniq: Any, get: Any, where: Any) -> Any:
        def spy_get(seek: int, nbytes: int) -> Any:
            spans.append((seek, seek + nbytes))
            return get(seek, nbytes)

        return real_decode(plans, uniq, spy_get, where)

    via_uproot: Counter[tuple[str, int]] = Counter()
    real = uproot.behaviors.TBranch.TBranch.basket

    def spy(self: Any, basket_num: int) -> Any:
        via_uproot[(self.name, int(basket_num))] += 1
        return real(self, basket_num)

    monkeypatch.setattr(_baskets, "_decode", spy_decode)
    monkeypatch.setattr(uproot.behaviors.TBranch.TBranch, "basket", spy)
    fetch_events([(10, 3), (10, 4), (10, 300)], paths=files["paths"], with_hits=False)
    assert not via_uproot, via_uproot  # every basket decoded by the direct reader
    # entries 3 and 4 share basket 0 (50 per basket), 300 is in basket 6: each of these
    # two baskets is read once per branch, no other basket is touched
    where: dict[int, tuple[str, int]] = {}
    with uproot.open(files["paths"][10][0]) as f:
        tree = f[f.keys(cycle=False)[0]]
        for br in tree.values():
            for k in range(br.num_baskets):
                where[int(br.member("fBasketSeek")[k])] = (br.name, k)
    got = Counter(where[seek] for seek, _ in spans)
    assert set(got.values()) == {1}, got
    assert {k for _, k in got} == {0, 6}
    assert len(got) == 2 * len({name for name, _ in got})


def test_many_entries_across_baskets(files: dict[str, Any]) -> None:
    """Hundreds of entries over every basket (repeats, any order) match a direct take."""
    rng = np.random.default_rng(5)
    pairs = [
        (int(f), int(e))
        for f, e in zip(rng.choice([10, 11, 12], 600), rng.integers(0, N, 600), strict=True)
    ]
    got = fetch_events(pairs, paths=files["paths"])
    assert got.hits is not None
    for fid in (10, 11, 12):
        rows = np.flatnonzero(got.esd["file_id"].to_numpy() == fid)
        entries = got.esd["entry"].to_numpy()[rows]
        expect = take_hits(files["hits"][fid], entries)
        part = take_hits(got.hits, rows)
        for name in ("event_id", "t", "trigger", "offsets", "pmt", "charge", "time"):
            np.testing.assert_array_equal(getattr(part, name), getattr(expect, name))
        for col in ("t", "E", "x", "cls", "nhit"):
            want = np.asarray(files["esd"][fid][col])[entries]
            np.testing.assert_array_equal(
                got.esd[col].to_numpy()[rows], want.astype(got.esd[col].dtype)
            )


def test_dataframe_from_index_and_no_hits(files: dict[str, Any], tmp_path: Path) -> None:
    esd_path = files["paths"][11][0]
    index = read_index(build_index(esd_path, tmp_path / "i.parquet", file_id=11).output)
    cands = index.to_pandas().query("E > 6").head(7)
    assert len(cands) > 2
    got = fetch_events(cands, paths=files["paths"], with_hits=False, columns=["E", "x"])
    assert got.hits is None and list(got.esd.columns) == ["file_id", "entry", "E", "x"]
    np.testing.assert_array_equal(got.esd["E"].to_numpy(), cands["E"].to_numpy())
    np.testing.assert_array_equal(got.esd["x"].to_numpy(), cands["x"].to_numpy())


def test_missing_entry_names_file_id_path_and_entry(files: dict[str, Any]) -> None:
    with pytest.raises(FormatError, match=r"file id 11.*entry 400 out of range") as info:
        fetch_events([(10, 1), (11, 400)], paths=files["paths"])
    assert info.value.path is not None and info.value.path.endswith("run000001_0001.esd.root")


def test_unknown_file_id(files: dict[str, Any]) -> None:
    with pytest.raises(NotInCatalogError, match=r"file ids \[99\]"):
        fetch_events([(99, 0)], paths=files["paths"])


def test_esd_not_made_from_rtraw_is_detected(files: dict[str, Any]) -> None:
    paths = dict(files["paths"])
    paths[10] = (paths[10][0], paths[11][1])  # wrong RTRAW
    with pytest.raises(FormatError, match=r"file id 10.*not made from this RTRAW"):
        fetch_events([(10, 0)], paths=paths)


def test_resolution_through_catalog(files: dict[str, Any], tmp_path: Path) -> None:
    store = pytest.importorskip("jaas.store")
    cat = store.Catalog(tmp_path / "catalog.db")
    ids = {}
    for fid, (esd_path, rtraw_path) in files["paths"].items():
        rt = cat.add_file(rtraw_path, kind="rtraw", run=1)
        ids[fid] = cat.add_file(esd_path, kind="esd", run=1, parents=[rt.id]).id
    pairs = [(ids[12], 7), (ids[10], 1)]
    got = fetch_events(pairs, catalog=cat)
    assert got.esd["t"].tolist() == [files["esd"][12]["t"][7], files["esd"][10]["t"][1]]
    assert got.hits is not None and got.hits.event_id.tolist() == [2 * N + 7, 1]
    rt_id = cat.parents(ids[10])[0].id
    with pytest.raises(NotInCatalogError, match="not an ESD file"):
        fetch_events([(rt_id, 0)], catalog=cat)
    cat.close()


def test_empty_request(files: dict[str, Any]) -> None:
    got = fetch_events([], paths=files["paths"])
    assert len(got) == 0 and got.hits is not None and len(got.hits) == 0


def test_file_rewritten_between_fetches_is_read_anew(files: dict[str, Any]) -> None:
    """Entry reads keep files open between calls; a file replaced on disk is reopened."""
    es, rt = files["paths"][10]
    first = fetch_events([(10, 7)], paths=files["paths"])
    h = make_hits(N, seed=77, first_id=5000)
    write_rtraw([h], rt, meta={"run": 1, "file_seq": 0}, basket_hits=800)
    cols = make_esd(N, seed=78, event_ids=h.event_id)
    cols["t"] = h.t
    write_esd(cols, es, meta=meta(file_seq=0, parent=Path(rt).name), basket_events=50)
    again = fetch_events([(10, 7)], paths=files["paths"])
    assert first.esd["event_id"].tolist() == [7]
    assert again.esd["event_id"].tolist() == [5007] and again.esd["t"].tolist() == [h.t[7]]
    assert again.hits is not None and again.hits.event_id.tolist() == [5007]
