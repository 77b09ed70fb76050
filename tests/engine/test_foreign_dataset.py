"""Several foreign ESD files ingested into one catalog dataset stay contiguous in time
(issue 15, item 3): their catalog ids interleave with their index files' ids, which must
never be read as missing files. A pair straddles each file boundary and is found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import uproot

import jaas
from jaas.engine.session.analysis import IBDSelection
from jaas.engine.session.cache import ColumnCache
from jaas.store import Catalog
from jaas.store.foreign import ingest_foreign

SEC0 = 1_767_225_600
MAPPING = """\
tree: TEvent
run: 77
time: {seconds: sec, nanoseconds: nanosec}
columns:
  E: {branch: Erec, unit: GeV}
  x: {branch: recx, unit: mm}
  y: {branch: recy, unit: mm}
  z: {branch: recz, unit: mm}
defaults: {cls: 0, quality: 0}
"""


def _write(path: Path, times_ns: list[int], energies_mev: list[float]) -> None:
    t = np.array(times_ns, np.int64)
    n = len(t)
    data = {
        "sec": (t // 1_000_000_000).astype(np.uint32),
        "nanosec": (t % 1_000_000_000).astype(np.uint32),
        "recx": np.zeros(n),
        "recy": np.zeros(n),
        "recz": np.full(n, 100.0),
        "Erec": (np.array(energies_mev) / 1000).astype(np.float32),
    }
    with uproot.recreate(path) as f:  # a TTree (not an RNTuple), as other software writes
        tree = f.mktree("TEvent", {k: v.dtype for k, v in data.items()})
        tree.extend(data)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("pg_database_url")
    return url


def test_foreign_files_in_one_dataset_keep_pairs_across_boundaries(
    tmp_path: Path, catalog_url: str
) -> None:
    s, us = 1_000_000_000, 1_000
    t0 = SEC0 * s
    boundaries = [t0 + 10 * s, t0 + 20 * s]
    (tmp_path / "map.yaml").write_text(MAPPING)
    index_ids = []
    with Catalog(catalog_url) as cat:
        for k in range(3):
            lo, hi = t0 + k * 10 * s, t0 + (k + 1) * 10 * s
            times = [lo + s, lo + 5 * s]  # fillers (1 MeV: neither prompt-like nor delayed)
            energies = [1.0, 1.0]
            if k < 2:  # prompt 100 us before the next boundary
                times.append(hi - 100 * us)
                energies.append(3.0)
            if k > 0:  # delayed 100 us after this file's start
                times.insert(0, lo + 100 * us)
                energies.insert(0, 2.2)
            src = tmp_path / f"foreign_{k}.root"
            _write(src, times, energies)
            res = ingest_foreign(cat, src, tmp_path / "map.yaml", out_dir=tmp_path / "index")
            index_ids.append(res.index.id)
        assert index_ids != list(range(index_ids[0], index_ids[0] + 3))  # interleaved ids
        cat.create_dataset("foreign", file_ids=index_ids)
    ds = jaas.open(catalog_url, dataset="foreign", cache=ColumnCache())  # on SQLite and PostgreSQL
    assert ds.problems == [] and ds.lost == [], ds.info()
    assert len(ds.segments) == 1  # one good-time segment: no file seen as missing
    res = ds.ibd(IBDSelection(vetoes=(), offtime=None))
    t = res.columns["t"]
    assert sorted(int(t[d]) for d in res.result.delayed) == [b + 100 * us for b in boundaries]
    assert sorted(int(t[p]) for p in res.result.prompt) == [b - 100 * us for b in boundaries]
