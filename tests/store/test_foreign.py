"""Ingest ROOT files written by other software through a schema mapping."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uproot

from jaas.errors import ConfigError
from jaas.formats.index import read_index
from jaas.store import Catalog
from jaas.store.foreign import ingest_foreign
from jaas.store.mapping import parse_mapping

SEC0 = 1_735_689_600  # 2025-01-01T00:00:00Z: epoch seconds, where float64 ns would round


def _root() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the alpha ROOT wheel warns on import
            import ROOT
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("the ROOT wheel is missing: pip install -e '.[root]'")
        pytest.skip("the optional ROOT wheel is not installed")
    return ROOT


def _zmumu() -> str:
    """uproot-Zmumu.root from scikit-hep-testdata, without network.

    The PyPI package ships no data files: ``data_path`` downloads them from GitHub, which
    our machines cannot reach. The file is used when it is in the package's cache or in
    ``../shared/testdata/`` (or ``$JAAS_TESTDATA``); otherwise this test is skipped, with
    the reason, also in CI. The same mapping code is exercised without network by the
    tests on ROOT's own tutorial files below.
    """
    name = "uproot-Zmumu.root"
    candidates = [Path(os.environ.get("JAAS_TESTDATA", "/nonexistent")) / name]
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "testdata" / name)
    try:
        import skhep_testdata

        candidates.append(Path(skhep_testdata.data.cache_path(None)) / name)
    except (ImportError, AttributeError, OSError):
        pass
    for path in candidates:
        if path.is_file():
            return str(path)
    pytest.skip(
        f"{name} of scikit-hep-testdata is not available offline (PyPI ships no data; "
        "put it in ../shared/testdata/ or $JAAS_TESTDATA)"
    )


def _hsimple() -> str:
    """hsimple.root, written by ROOT's C++ I/O, shipped in the optional ROOT wheel."""
    ROOT = _root()
    path = Path(ROOT.__file__).parent / "tutorials" / "hsimple.root"
    if not path.is_file():
        pytest.fail(f"the ROOT wheel no longer ships {path}")
    return str(path)


def _write_with_root(path: Path, n: int, seed: int = 3) -> dict[str, np.ndarray]:
    """A TTree written by ROOT's own C++ I/O, TTimeStamp-style times, mm and GeV."""
    ROOT = _root()
    rng = np.random.default_rng(seed)
    data = {
        "sec": (SEC0 + np.sort(rng.integers(0, 3600, n))).astype(np.uint32),
        "nanosec": rng.integers(0, 1_000_000_000, n).astype(np.uint32),
        "recx": rng.uniform(-17000, 17000, n),
        "recy": rng.uniform(-17000, 17000, n),
        "recz": rng.uniform(-17000, 17000, n),
        "Erec": rng.uniform(0.0005, 0.012, n).astype(np.float32),
    }
    kinds = {"sec": "i", "nanosec": "i", "recx": "D", "recy": "D", "recz": "D", "Erec": "F"}
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("TEvent", "foreign ESD")
    buffers = {k: np.zeros(1, dtype=v.dtype) for k, v in data.items()}
    for k, buf in buffers.items():
        tree.Branch(k, buf, f"{k}/{kinds[k]}")
    for i in range(n):
        for k, buf in buffers.items():
            buf[0] = data[k][i]
        tree.Fill()
    tree.Write()
    f.Close()
    return data


MAPPING = """\
tree: TEvent
run: 1234
{time}
columns:
  {t}
  E: {{branch: Erec, unit: GeV}}
  x: {{branch: recx, unit: mm}}
  y: {{branch: recy, unit: mm}}
  z: {{branch: recz, unit: mm}}
defaults: {{cls: 0, quality: 0}}
"""


@pytest.mark.root
@pytest.mark.parametrize(
    ("time", "t"),
    [
        ("time: {seconds: sec, nanoseconds: nanosec}", ""),
        ("", 't: {expr: "sec * 1e9 + nanosec", unit: ns}'),
    ],
    ids=["time-form", "expression"],
)
def test_ingest_file_written_by_root(tmp_path: Path, time: str, t: str) -> None:
    src = tmp_path / "foreign.root"
    data = _write_with_root(src, 300)
    yaml_path = tmp_path / "map.yaml"
    yaml_path.write_text(MAPPING.format(time=time, t=t))
    with Catalog(tmp_path / "catalog.db") as cat:
        res = ingest_foreign(cat, src, yaml_path, out_dir=tmp_path / "out")
        assert res.esd.kind == "esd"
        assert res.esd.meta["foreign"] is True
        assert res.esd.meta["schema"]["tree"] == "TEvent"
        assert res.index.kind == "index"
        assert res.index.parent_ids == (res.esd.id,)
        assert res.index.n_events == 300
        again = ingest_foreign(cat, src, yaml_path, out_dir=tmp_path / "out")
        assert again == res  # idempotent
        assert len(cat.files()) == 2
    table = read_index(res.index.path).to_pandas().sort_values("entry")
    expected_t = [
        int(s) * 1_000_000_000 + int(ns) for s, ns in zip(data["sec"], data["nanosec"], strict=True)
    ]
    assert table["t"].tolist() == expected_t  # exact to the nanosecond
    assert res.esd.t_min == min(expected_t)
    np.testing.assert_allclose(table["x"], data["recx"] / 1000, rtol=1e-6)
    np.testing.assert_allclose(table["z"], data["recz"] / 1000, rtol=1e-6)
    np.testing.assert_allclose(table["E"], data["Erec"].astype(np.float64) * 1000, rtol=1e-6)
    r = np.sqrt(data["recx"] ** 2 + data["recy"] ** 2 + data["recz"] ** 2) / 1000
    np.testing.assert_allclose(table["r"], r, rtol=1e-6)
    assert set(table["run"]) == {1234}
    assert set(table["file_id"]) == {res.esd.id}
    assert not table["muon"].any()


ZMUMU = """\
tree: events
run_branch: Run
time: {start: 1700000000, start_unit: s, offset: Event, unit: ms}
columns:
  E: {branch: E1, unit: GeV}
  x: {branch: px1, unit: cm}
  y: {branch: py1, unit: cm}
  z: {branch: pz1, unit: cm}
  quality: {branch: Q1, offset: 1}
"""


def test_ingest_skhep_zmumu(tmp_path: Path) -> None:
    src = _zmumu()
    direct = uproot.open(src)["events"].arrays(library="np")
    with Catalog(tmp_path / "catalog.db") as cat:
        res = ingest_foreign(cat, src, parse_mapping(ZMUMU, "zmumu.yaml"))
        assert Path(res.index.path).parent == tmp_path / "data" / "index"
        assert res.esd.n_events == len(direct["Run"])
    table = read_index(res.index.path).to_pandas().sort_values("entry")
    np.testing.assert_array_equal(table["run"], direct["Run"])
    expected_t = 1_700_000_000 * 10**9 + direct["Event"].astype(np.int64) * 10**6
    np.testing.assert_array_equal(table["t"], expected_t)
    np.testing.assert_allclose(table["E"], direct["E1"] * 1000, rtol=1e-6)
    np.testing.assert_allclose(table["y"], direct["py1"] / 100, rtol=1e-6)
    np.testing.assert_array_equal(table["quality"], direct["Q1"] + 1)
    t = table["t"].to_numpy()
    assert (res.index.t_min, res.index.t_max) == (t.min(), t.max())


HSIMPLE = """\
tree: ntuple
run: 99
time: {start: 1700000000, start_unit: s, offset: i, unit: us}
columns:
  E: {expr: "sqrt(px**2 + py**2 + pz**2)", unit: GeV}
  x: {branch: px, unit: m}
  y: {branch: py, unit: m}
  z: {branch: pz, unit: m}
"""


@pytest.mark.root
def test_ingest_root_tutorial_ntuple(tmp_path: Path) -> None:
    """A real file written by ROOT's C++ I/O (ROOT's hsimple tutorial), shipped on PyPI."""
    src = _hsimple()
    direct = uproot.open(src)["ntuple"].arrays(library="np")
    with Catalog(tmp_path / "catalog.db") as cat:
        res = ingest_foreign(cat, src, parse_mapping(HSIMPLE, "hsimple.yaml"))
        assert res.esd.n_events == len(direct["px"]) == 25000
    table = read_index(res.index.path).to_pandas().sort_values("entry")
    expected_t = 1_700_000_000 * 10**9 + direct["i"].astype(np.int64) * 1000
    np.testing.assert_array_equal(table["t"], expected_t)
    p = np.sqrt(direct["px"].astype(np.float64) ** 2 + direct["py"] ** 2 + direct["pz"] ** 2)
    np.testing.assert_allclose(table["E"], p * 1000, rtol=1e-5)
    np.testing.assert_allclose(table["x"], direct["px"], rtol=1e-6)
    assert set(table["run"]) == {99}


@pytest.mark.root
def test_unknown_branch_and_tree_named_with_nearest(tmp_path: Path) -> None:
    src = _hsimple()
    with Catalog(tmp_path / "catalog.db") as cat:
        bad = parse_mapping(HSIMPLE.replace("branch: py", "branch: pyy"), "hsimple.yaml")
        with pytest.raises(ConfigError, match=r"hsimple.yaml line 7: no branch 'pyy' in tree "):
            ingest_foreign(cat, src, bad)
        with pytest.raises(ConfigError, match=r"\(nearest: [^)]*'py'"):
            ingest_foreign(cat, src, bad)
        bad = parse_mapping(HSIMPLE.replace("tree: ntuple", "tree: ntupel"), "hsimple.yaml")
        with pytest.raises(ConfigError, match=r"line 1: no tree 'ntupel' .*nearest: 'ntuple'"):
            ingest_foreign(cat, src, bad)
        assert cat.files() == []  # nothing registered on failure
