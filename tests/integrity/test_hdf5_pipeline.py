"""HDF5 index files end to end through the keep-up pipeline (issue 15, item 19).

A real pipeline (embedded broker, relay, one worker per stage, each attempt in its own
process) indexes ESD files with ``format: hdf5``, publishes them into the live catalog
dataset, and the analysis of that dataset finds exactly the pairs that were written,
including the one straddling the file boundary.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import jaas
from jaas.engine.session.analysis import IBDSelection
from jaas.engine.session.cache import ColumnCache
from jaas.formats.esd import write_esd
from jaas.formats.index import is_hdf5, read_index
from jaas.formats.schema import EventClass
from jaas.kup.config import KupSettings
from jaas.kup.pipeline import down, ingest, status, up
from jaas.store import Catalog
from tests.formats.test_esd import make_esd

STAGES = """\
stages:
  - name: index
    input: h5.index
    output: h5.publish
    entry: jaas.kup.stages:index
    params: {format: hdf5}
    timeout: 120
  - name: publish
    input: h5.publish
    entry: jaas.kup.stages:publish
    params: {dataset: keepup}
    timeout: 120
"""
S, US = 1_000_000_000, 1_000
T0 = 1_767_225_600 * S


def _esd(path: Path, seq: int, times: list[int], energies: list[float]) -> None:
    n = len(times)
    cols = make_esd(n, seed=seq, event_ids=np.arange(100 * seq, 100 * seq + n, dtype=np.uint64))
    cols.update(
        t=np.array(times, np.int64), E=np.array(energies, np.float32),
        x=np.zeros(n), y=np.full(n, 0.5), z=np.full(n, -1.0),
        cls=np.full(n, EventClass.POINT, np.uint8), wp=np.zeros(n, bool),
        showering=np.zeros(n, bool), tracked=np.zeros(n, bool),
    )  # fmt: skip
    for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        cols[c] = np.full(n, np.nan)
    meta = {"run": 9, "file_seq": seq, "parent": f"run000009_{seq:04d}.rtraw.root",
            "calib_version": "c1", "start_time": T0 + 10 * S * seq}  # fmt: skip
    write_esd(cols, path, meta=meta)


def test_pipeline_indexes_as_hdf5_publishes_and_the_dataset_is_analysable(
    tmp_path: Path,
) -> None:
    esd_dir = tmp_path / "esd"
    esd_dir.mkdir()
    # file 0: filler, a pair at 2 s, a prompt 80 us before the boundary at 10 s
    _esd(esd_dir / "run000009_0000.esd.root", 0,
         [T0, T0 + 2 * S, T0 + 2 * S + 50 * US, T0 + 10 * S - 80 * US],
         [1.0, 3.0, 2.2, 4.0])  # fmt: skip
    # file 1: the delayed partner 20 us after the boundary, a pair at 15 s, a filler
    _esd(esd_dir / "run000009_0001.esd.root", 1,
         [T0 + 10 * S + 20 * US, T0 + 15 * S, T0 + 15 * S + 200 * US, T0 + 19 * S],
         [2.2, 5.0, 2.2, 1.0])  # fmt: skip
    stages = tmp_path / "stages.yaml"
    stages.write_text(STAGES, encoding="utf-8")
    sd = tmp_path / "kup"
    settings = KupSettings(state_dir=sd, stages=str(stages), session_timeout_ms=3000)
    up(settings, monitor_interval=None, supervise=False)
    try:
        ingest(sd, sorted(esd_dir.glob("*.esd.root")))
        deadline = time.monotonic() + 120
        while status(sd).files_done("publish") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        st = status(sd)
        assert st.files_done("publish") == 2, (st.counts, st.failures)
    finally:
        down(sd, timeout=5)
    url = KupSettings.load(sd).database
    with Catalog(url) as cat:
        published = cat.dataset_files("keepup")
        esd_ids = {Path(f.path).name: f.id for f in cat.files(kind="esd")}
    assert len(published) == 2
    assert all(is_hdf5(f.path) and f.path.endswith(".index.h5") for f in published)
    for f in published:  # rows point back at their ESD file (the redirect key)
        (parent,) = f.parent_ids
        assert set(read_index(f.path).column("file_id").to_pylist()) == {parent}

    res = jaas.open(url, dataset="keepup", cache=ColumnCache()).ibd(
        IBDSelection(vetoes=(), offtime=None)
    )
    t = res.columns["t"]
    got = sorted(zip(t[res.result.prompt].tolist(), t[res.result.delayed].tolist(), strict=True))
    assert got == [
        (T0 + 2 * S, T0 + 2 * S + 50 * US),
        (T0 + 10 * S - 80 * US, T0 + 10 * S + 20 * US),  # across the file boundary
        (T0 + 15 * S, T0 + 15 * S + 200 * US),
    ]
    with Catalog(url) as cat:  # and the full events come back from the ESD files
        ev = res.events(catalog=cat, with_hits=False)
    assert set(ev.esd["file_id"]) == set(esd_ids.values())
    np.testing.assert_allclose(sorted(ev.esd["E"]), sorted([3.0, 4.0, 5.0, 2.2, 2.2, 2.2]),
                               rtol=1e-6)  # fmt: skip
