"""The processing chain end to end: simulated RAW -> RTRAW -> ESD -> index, cataloged,
then the IBD analysis on the index and its candidates' full events via the redirect."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import jaas
from jaas.cli.main import cli
from jaas.engine.cache import ColumnCache
from jaas.formats.rtraw import read_meta
from jaas.store import Catalog


@pytest.mark.slow
def test_raw_to_analysis_with_catalog_and_redirect(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'catalog.db'}"

    def run(*args: str) -> str:
        res = runner.invoke(cli, list(args))
        assert res.exit_code == 0, res.output + repr(res.exception)
        return res.output

    run("sim", str(tmp_path / "sim"), "--duration", "20s", "--mode", "hit", "--seed", "4",
        "--light-scale", "0.1", "--pmt-scale", "0.1", "--scale", "reactor_ibd=3000")  # fmt: skip
    raws = sorted(str(p) for p in (tmp_path / "sim" / "raw").glob("*.raw"))
    # the processed files live far from the simulation's run JSON: the detector
    # configuration must travel inside the files (RAW header -> RTRAW metadata)
    work = tmp_path / "elsewhere"
    run("convert", *raws, "-o", str(work / "rtraw"), "--catalog", url)
    rtraws = sorted(str(p) for p in (work / "rtraw").glob("*.root"))
    assert "detector" in read_meta(rtraws[0])["raw_metadata"]
    run("reco", *rtraws, "-o", str(work / "esd"), "--catalog", url)
    esds = sorted(str(p) for p in (work / "esd").glob("*.root"))
    run("index", *esds, "-o", str(work / "index"), "--catalog", url)
    again = run("index", *esds, "-o", str(work / "index"), "--catalog", url)
    assert "skip" in again.lower() or "up to date" in again.lower()

    with Catalog(url) as cat:
        kinds = [f.kind for f in cat.files()]
        raw_rec = cat.files(kind="raw")[0]
        assert raw_rec.n_events == cat.children(raw_rec.id)[0].n_events > 0
        assert sorted(set(kinds)) == ["esd", "index", "raw", "rtraw"]
        assert kinds.count("index") == len(raws)  # idempotent: no duplicate rows
        index_files = cat.files(kind="index")
        chain = [f.kind for f in cat.lineage(index_files[0].id)]
        assert chain == ["esd", "rtraw", "raw"]
        cat.create_dataset("chain-test", file_ids=[f.id for f in index_files])

    ds = jaas.open(url, dataset="chain-test", cache=ColumnCache())
    res = ds.ibd(offtime=None)
    assert res.n_pairs >= 5  # ~3000x the reactor rate over 20 s
    with Catalog(url) as cat:
        events = res.events(catalog=cat)
    n = res.n_pairs
    assert len(events) == 2 * n
    # the full events are exactly the candidates: same times and energies as the index
    np.testing.assert_array_equal(events.esd["t"][:n], res.pairs["prompt_t"])
    np.testing.assert_array_equal(events.esd["t"][n:], res.pairs["delayed_t"])
    np.testing.assert_allclose(events.esd["E"][:n], res.pairs["prompt_E"], rtol=1e-6)
    assert events.hits is not None
    assert (events.hits.nhits > 0).all()
    _pairs_are_true_ibd(res.pairs, tmp_path / "sim" / "truth")

    # the same ESDs indexed as HDF5 files give the same analysis, from the API and the CLI
    run("index", *esds, "-o", str(work / "h5"), "--format", "hdf5")
    h5 = sorted((work / "h5").glob("*.index.h5"))
    assert len(h5) == len(esds)
    res_h5 = jaas.open(str(work / "h5"), cache=ColumnCache()).ibd(offtime=None)
    assert res_h5.n_pairs == n
    np.testing.assert_array_equal(res_h5.pairs["prompt_t"], res.pairs["prompt_t"])
    np.testing.assert_array_equal(res_h5.pairs["delayed_t"], res.pairs["delayed_t"])
    assert re.search(rf"^pairs\s+{n}\s", run("ibd", str(work / "h5")), re.MULTILINE)

    # a corrupt RAW file is rejected with its name and leaves no output behind
    bad = tmp_path / "bad.raw"
    shutil.copy(raws[0], bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(data)
    res_bad = runner.invoke(cli, ["convert", str(bad), "-o", str(tmp_path / "badout")])
    assert res_bad.exit_code != 0
    assert "bad.raw" in (res_bad.output + str(res_bad.exception))
    assert (
        not list((tmp_path / "badout").glob("*.root")) if (tmp_path / "badout").exists() else True
    )


def _pairs_are_true_ibd(pairs: dict[str, np.ndarray], truth_dir: Path) -> None:
    """Every candidate is a simulated trigger, and the pairs are the simulated IBDs.

    Trigger times are unique in a run, so each candidate's time finds its truth row.
    """
    truth = pa.concat_tables([pq.read_table(p) for p in sorted(truth_dir.glob("*.parquet"))])
    t = truth.column("t").to_numpy()
    order = np.argsort(t, kind="stable")
    source = np.asarray(truth.column("source").cast(pa.string()).to_pylist(), dtype=object)
    role = np.asarray(truth.column("role").cast(pa.string()).to_pylist(), dtype=object)
    corr = truth.column("corr_id").to_numpy()

    def rows(times: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(t[order], times), len(t) - 1)
        found = order[pos]
        np.testing.assert_array_equal(t[found], times)  # every candidate is a real trigger
        return found

    p, d = rows(np.asarray(pairs["prompt_t"])), rows(np.asarray(pairs["delayed_t"]))
    true = (
        (source[p] == "reactor_ibd")
        & (role[p] == "prompt")
        & (source[d] == "reactor_ibd")
        & (role[d] == "delayed")
        & (corr[p] == corr[d])
    )
    # the IBDs the simulation wrote: prompt and delayed both triggered
    ibd = source == "reactor_ibd"
    groups = set(corr[ibd & (role == "prompt")]) & set(corr[ibd & (role == "delayed")])
    purity, efficiency = true.mean(), true.sum() / len(groups)
    # a tenth of the light and of the PMTs: a coarse detector, but the selection must
    # still find most simulated IBDs (82.2 % published for the full selection, physics.md)
    # and little else (reactor rate scaled 3000x)
    assert purity >= 0.95, (purity, int(true.sum()), len(true))
    assert 0.65 <= efficiency <= 0.95, (efficiency, int(true.sum()), len(groups))
    assert len(set(corr[p[true]])) == int(true.sum())  # no IBD counted twice
