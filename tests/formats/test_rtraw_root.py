"""RTRAW written by jaas opens in ROOT itself (RDataFrame) with the RAW file's sums."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jaas.formats.raw import read_raw
from jaas.formats.rtraw import convert_raw
from tests.formats.test_rtraw import make_hits, write_raw

pytestmark = pytest.mark.root


def _import_root() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the alpha wheel warns on import
            import ROOT
        ROOT.gROOT.SetBatch(True)
        return ROOT
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PyROOT is required in CI (pip install 'jaas[root]'): {exc}")
        pytest.skip(f"PyROOT not available: {exc}")


@pytest.mark.parametrize("compression", ["zstd", "lz4", "zlib"])
def test_rdataframe_sums_match_raw(tmp_path: Path, compression: str) -> None:
    ROOT = _import_root()
    raw = write_raw(tmp_path / "run000001_0000.raw", make_hits(800, seed=11), run=1)
    out = convert_raw(raw, compression=compression, progress=False, basket_hits=2000).output
    hits = read_raw(raw)  # the reference: what the RAW reader sees

    t0 = int(hits.t[0])
    df = ROOT.RDataFrame("rtraw", str(out))
    df = df.Define("dt", f"(Long64_t)(t - {t0}LL)").Define("q", "ROOT::VecOps::Sum(charge)")
    df = df.Define("npmt", "(int)pmt.size()").Define(
        "pmtsum", "double s = 0; for (auto p : pmt) s += p; return s;"
    )
    count = df.Count()
    # types inferred by ROOT; every integer sum here stays below 2**53 (exact in a double)
    sum_dt = df.Sum("dt")
    sum_nhit = df.Sum("nhit")
    sum_npmt = df.Sum("npmt")
    sum_q = df.Sum("q")
    sum_pmt = df.Sum("pmtsum")
    last_id = df.Max("event_id")

    assert count.GetValue() == len(hits)
    assert int(sum_dt.GetValue()) == int((hits.t - t0).sum())
    assert int(sum_nhit.GetValue()) == int(hits.nhits.sum()) == int(sum_npmt.GetValue())
    assert int(sum_pmt.GetValue()) == int(hits.pmt.astype(np.uint64).sum())
    assert sum_q.GetValue() == pytest.approx(float(hits.charge.astype(np.float64).sum()), rel=1e-5)
    assert int(last_id.GetValue()) == int(hits.event_id[-1])


def test_root_reads_metadata(tmp_path: Path) -> None:
    ROOT = _import_root()
    raw = write_raw(tmp_path / "run000003_0002.raw", make_hits(50, seed=12), run=3, file_seq=2)
    out = convert_raw(raw, progress=False).output
    f = ROOT.TFile.Open(str(out))
    try:
        text = str(f.Get("jaas_meta").GetString())
    finally:
        f.Close()
    assert '"run": 3' in text and '"file_seq": 2' in text and raw.name in text


def test_root_reads_default_esd(tmp_path: Path) -> None:
    """ESD files are written with uncompressed baskets by default: ROOT reads them too."""
    from jaas.formats.esd import write_esd
    from tests.formats.test_esd import make_esd, meta

    ROOT = _import_root()
    cols = make_esd(3000, seed=4)
    path = tmp_path / "run000001_0000.esd.root"
    write_esd(cols, path, meta=meta(), basket_events=500)
    df = ROOT.RDataFrame("esd", str(path))
    count, sum_e, sum_nhit = df.Count(), df.Sum("E"), df.Sum("nhit")
    assert count.GetValue() == 3000
    assert int(sum_nhit.GetValue()) == int(cols["nhit"].astype(np.int64).sum())
    expect = float(cols["E"].astype(np.float32).astype(np.float64).sum())
    assert sum_e.GetValue() == pytest.approx(expect, rel=1e-6)
