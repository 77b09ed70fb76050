"""Entry reads decoded straight from baskets (jaas.formats._baskets) equal uproot's arrays.

Property tests over random entry lists on our own RTRAW and ESD files (every codec, small
baskets so that entries span many of them), on ROOT-written files of the shared test data,
and on trees written by ROOT itself (every codec ROOT offers).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaas.errors import FormatError
from jaas.formats import _baskets
from jaas.formats.esd import ESD_COLUMNS, read_esd, write_esd
from jaas.formats.rtraw import TREE, convert_raw, open_tree, read_rtraw, take_hits
from tests.formats.test_rtraw import assert_same_hits, make_hits, write_raw

TESTDATA = Path("/work/shared/testdata")
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def entry_lists(n: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, n - 1), max_size=40)


def assert_rows_equal(tree: Any, names: list[str], entries: list[int]) -> None:
    """read_rows of ``entries`` equals uproot's arrays of the same entries, per branch."""
    uniq = np.unique(np.asarray(entries, dtype=np.int64))
    cols = _baskets.read_rows(tree, names, uniq)
    assert cols is not None, "the direct reader fell back"
    for name in names:
        ref = tree[name].array(library="ak")[uniq]
        col = cols[name]
        if col.counts is None:
            expect = np.asarray(ak.to_numpy(ref))
        else:
            np.testing.assert_array_equal(col.counts, ak.to_numpy(ak.num(ref)), err_msg=name)
            expect = np.asarray(ak.to_numpy(ak.flatten(ref)))
        assert col.values.dtype == expect.dtype, name
        np.testing.assert_array_equal(col.values, expect, err_msg=name)


@pytest.fixture(scope="module", params=["zstd", "lz4", "zlib", "none"])
def rtraw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp(f"rtraw-{request.param}")
    raw = write_raw(tmp / "run000001_0000.raw", make_hits(700, seed=5), run=1)
    return convert_raw(raw, compression=request.param, progress=False, basket_hits=450).output


@SETTINGS
@given(data=st.data())
def test_rtraw_rows_equal_uproot(rtraw: Path, data: st.DataObject) -> None:
    with uproot.open(rtraw) as f:
        tree = f[TREE]
        assert tree["pmt"].num_baskets > 50  # entries spread over many baskets
        entries = data.draw(entry_lists(int(tree.num_entries)))
        assert_rows_equal(tree, list(tree.keys()), entries)
    full = read_rtraw(rtraw)
    assert_same_hits(read_rtraw(rtraw, entries=entries), take_hits(full, entries))


def test_rtraw_entry_reads_use_the_direct_reader(
    rtraw: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = _baskets.read_local

    def counted(*args: Any) -> Any:
        out = real(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(_baskets, "read_local", counted)
    hits = read_rtraw(rtraw, entries=[3, 650, 3, 0])
    assert calls == [True]
    assert hits.event_id.tolist() == [3, 650, 3, 0]


@pytest.fixture(scope="module")
def esd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    n = 1500
    cols: dict[str, np.ndarray] = {}
    for name, dtype in ESD_COLUMNS.items():
        if dtype.kind == "f":
            cols[name] = rng.normal(0, 5, n).astype(dtype)
        elif dtype.kind == "b":
            cols[name] = rng.random(n) < 0.3
        else:
            cols[name] = rng.integers(0, min(np.iinfo(dtype).max, 1 << 40), n, dtype=dtype)
    cols["mx0"][::3] = np.nan
    path = tmp_path_factory.mktemp("esd") / "run000001_0000.esd.root"
    write_esd(cols, path, meta={"run": 1, "file_seq": 0, "parent": "x"}, basket_events=100)
    return path, cols


@SETTINGS
@given(data=st.data())
def test_esd_rows_equal_uproot(
    esd: tuple[Path, dict[str, np.ndarray]], data: st.DataObject
) -> None:
    path, cols = esd
    entries = data.draw(entry_lists(1500))
    with uproot.open(path) as f:
        assert_rows_equal(f["esd"], list(ESD_COLUMNS), entries)
    got = read_esd(path, entries=entries)
    assert isinstance(got, dict)
    for name, values in cols.items():
        np.testing.assert_array_equal(got[name], values[entries], err_msg=name)
        assert got[name].dtype == ESD_COLUMNS[name]


def _decodable(tree: Any) -> list[str]:
    return [n for n in tree.keys(recursive=False) if _baskets._plan(tree[n]) is not None]


@pytest.mark.parametrize(
    ("name", "min_branches"), [("uproot-Zmumu.root", 15), ("uproot-HZZ.root", 40)]
)
@SETTINGS
@given(data=st.data())
def test_root_written_testdata(name: str, min_branches: int, data: st.DataObject) -> None:
    with uproot.open(TESTDATA / name) as f:
        tree = f["events"]
        names = _decodable(tree)
        assert len(names) >= min_branches
        assert_rows_equal(tree, names, data.draw(entry_lists(int(tree.num_entries))))


def _root() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the alpha wheel warns on import
        import ROOT
    ROOT.gROOT.SetBatch(True)
    return ROOT


# ROOT's compression settings: algorithm * 100 + level
ROOT_CODECS = {"zlib": 101, "lzma": 207, "lz4": 404, "zstd": 505}


@pytest.fixture(scope="module", params=sorted(ROOT_CODECS))
def root_tree(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ROOT = _root()
    path = tmp_path_factory.mktemp(f"root-{request.param}") / "t.root"
    f = ROOT.TFile(str(path), "RECREATE", "", ROOT_CODECS[request.param])
    tree = ROOT.TTree("t", "written by ROOT")
    n = np.zeros(1, np.int32)
    x = np.zeros(1, np.float64)
    k = np.zeros(1, np.int64)
    flag = np.zeros(1, np.bool_)
    hits = np.zeros(64, np.float32)
    ids = np.zeros(64, np.uint16)
    tree.Branch("n", n, "n/I")
    tree.Branch("x", x, "x/D")
    tree.Branch("k", k, "k/L")
    tree.Branch("flag", flag, "flag/O")
    tree.Branch("hits", hits, "hits[n]/F")
    tree.Branch("ids", ids, "ids[n]/s")
    for b in tree.GetListOfBranches():
        b.SetBasketSize(1024)  # many baskets
    rng = np.random.default_rng(9)
    for i in range(3000):
        n[0] = rng.integers(0, 64)
        x[0], k[0], flag[0] = rng.normal(), i * 1_000_003 - 7, i % 3 == 0
        hits[: n[0]] = rng.normal(size=n[0])
        ids[: n[0]] = rng.integers(0, 60000, n[0])
        tree.Fill()
    tree.Write()
    f.Close()
    return path


@pytest.mark.root
@SETTINGS
@given(data=st.data())
def test_trees_written_by_root(root_tree: Path, data: st.DataObject) -> None:
    with uproot.open(root_tree) as f:
        tree = f["t"]
        assert tree["hits"].num_baskets > 20
        names = ["n", "x", "k", "flag", "hits", "ids"]
        assert _decodable(tree) == names
        assert_rows_equal(tree, names, data.draw(entry_lists(3000)))


def test_other_layouts_fall_back(tmp_path: Path) -> None:
    path = tmp_path / "v.root"
    with uproot.recreate(path) as f:
        t = f.mktree("t", {"v": "var * float64", "s": "string"})
        t.extend({"v": ak.Array([[1.0], [], [2.0, 3.0]]), "s": ak.Array(["a", "bc", ""])})
    with uproot.open(path) as f:
        tree = f["t"]
        assert _baskets.read_rows(tree, ["s"], np.array([0, 2])) is None  # strings
        cols = _baskets.read_rows(tree, ["nv", "v"], np.array([1, 2]))
        assert cols is not None
        assert cols["v"].values.tolist() == [2.0, 3.0]
        assert cols["v"].counts is not None
        assert cols["v"].counts.tolist() == [0, 2]


# --- kept layouts and damaged baskets -----------------------------------------------------


def _opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opened: list[str] = []
    real = uproot.open

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(uproot, "open", counting)
    return opened


def test_layout_is_kept_and_renewed_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = write_raw(tmp_path / "run000001_0000.raw", make_hits(300, seed=1), run=1)
    path = convert_raw(raw, progress=False, basket_hits=450).output
    opened = _opens(monkeypatch)
    first = read_rtraw(path, entries=[5, 250])
    assert len(opened) == 1
    assert_same_hits(read_rtraw(path, entries=[5, 250]), first)
    assert len(opened) == 1  # the kept layout: no uproot open
    # the same name, other content (the bytes differ, so does the size or at least mtime)
    raw2 = write_raw(tmp_path / "other.raw", make_hits(300, seed=2), run=1)
    other = convert_raw(raw2, tmp_path / "other.rtraw.root", progress=False, basket_hits=450)
    expect = read_rtraw(other.output)
    opened.clear()
    other.output.replace(path)
    assert_same_hits(read_rtraw(path, entries=[5, 250]), take_hits(expect, [5, 250]))
    assert len(opened) == 1
    # rewritten in place with the same size: a new mtime is enough
    opened.clear()
    data = path.read_bytes()
    path.write_bytes(data)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    read_rtraw(path, entries=[5])
    assert len(opened) == 1


def test_one_zstd_context_per_thread_is_reused(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "run000001_0000.raw", make_hits(300, seed=8), run=1)
    path = convert_raw(raw, compression="zstd", progress=False, basket_hits=450).output
    full = read_rtraw(path)
    assert_same_hits(read_rtraw(path, entries=[3, 150]), take_hits(full, [3, 150]))
    ctx = _baskets._local.zstd
    assert_same_hits(read_rtraw(path, entries=[299, 0, 3]), take_hits(full, [299, 0, 3]))
    assert _baskets._local.zstd is ctx


def _basket_of(path: Path, branch: str, k: int) -> tuple[int, int, int]:
    """(seek, nbytes, first entry) of basket ``k`` of ``branch`` in an RTRAW file."""
    with uproot.open(path) as f:
        b = f[TREE][branch]
        return (
            int(b.member("fBasketSeek")[k]),
            int(b.member("fBasketBytes")[k]),
            int(b.entry_offsets[k]),
        )


@pytest.fixture(params=["zstd", "lz4", "zlib", "none"])
def small_rtraw(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    raw = write_raw(tmp_path / "run000001_0000.raw", make_hits(300, seed=4), run=1)
    return convert_raw(raw, compression=request.param, progress=False, basket_hits=450).output


def _damage(path: Path, at: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def test_damaged_basket_key_is_named(small_rtraw: Path) -> None:
    seek, nbytes, entry = _basket_of(small_rtraw, "charge", 3)
    _damage(small_rtraw, seek, (nbytes + 8).to_bytes(4, "big"))  # fNbytes
    with pytest.raises(FormatError) as exc:
        read_rtraw(small_rtraw, entries=[entry])
    err = exc.value
    assert err.path == str(small_rtraw) and err.offset == seek
    assert "basket 3 of branch 'charge'" in str(err)
    assert f"expected a basket key of {nbytes} bytes (fBasketBytes)" in str(err)


def test_damaged_basket_payload_is_named(small_rtraw: Path) -> None:
    seek, nbytes, entry = _basket_of(small_rtraw, "pmt", 5)
    codec = small_rtraw.name
    # the last bytes of a jagged basket are its entry offsets (and, compressed, the end of
    # the compressed block): make them nonsense
    _damage(small_rtraw, seek + nbytes - 24, b"\xff" * 24)
    with pytest.raises(FormatError) as exc:
        read_rtraw(small_rtraw, entries=[entry, entry + 1])
    err = exc.value
    assert err.path == str(small_rtraw) and err.offset == seek, codec
    assert "basket 5 of branch 'pmt'" in str(err) and "damaged: expected" in str(err)


def test_basket_past_the_end_of_the_file_is_named(small_rtraw: Path) -> None:
    """Metadata that places a basket across the end of the file (a damaged fBasketSeek)."""
    _, nbytes, entry = _basket_of(small_rtraw, "time", 4)
    try:
        lay = _baskets.layout(small_rtraw, TREE, ["time"], lambda: open_tree(small_rtraw, TREE))
        plan = lay.plans["time"]
        assert plan is not None
        plan.seek = plan.seek.copy()
        bad = small_rtraw.stat().st_size - nbytes // 2
        plan.seek[4] = bad
        with pytest.raises(FormatError) as exc:
            _baskets.read_local(lay, small_rtraw, ["time"], np.array([entry]))
    finally:
        _baskets.clear_cache()  # the damaged layout is not kept for other tests
    err = exc.value
    assert err.path == str(small_rtraw) and err.offset == bad
    assert "basket 4 of branch 'time'" in str(err)
    assert f"expected a basket of {nbytes} bytes, the file ends {nbytes // 2} bytes into it" in (
        str(err)
    )


def test_file_replaced_after_its_layout_was_read_is_not_decoded_with_it(
    tmp_path: Path, small_rtraw: Path
) -> None:
    lay = _baskets.layout(small_rtraw, TREE, ["time"], lambda: open_tree(small_rtraw, TREE))
    other = tmp_path / "other.root"
    other.write_bytes(small_rtraw.read_bytes()[:1000])
    # the bytes now at the path are not those of the layout (another inode and size):
    # read_local declines (the caller then reads through uproot, which names the problem)
    assert _baskets.read_local(lay, other, ["time"], np.array([0])) is None


def test_entry_reads_from_threads_agree(rtraw: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(2)
    lists = [rng.integers(0, 700, 30).tolist() for _ in range(16)]
    expect = [read_rtraw(rtraw, entries=e) for e in lists]
    _baskets.clear_cache()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda e: read_rtraw(rtraw, entries=e), lists))
    for a, b in zip(got, expect, strict=True):
        assert_same_hits(a, b)
