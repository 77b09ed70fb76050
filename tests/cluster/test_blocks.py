"""By default a worker correlates its run of files as one partition: pairs across the
boundaries between its files are found inside it, its veto phase is remembered (also
with a halo from another worker) and the client merges one result per worker."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tests.cluster._compare import assert_identical
from tests.cluster.test_backend import QUERY

import jaas
from jaas.cluster import Cluster, coincidence
from jaas.cluster.plan import block_cuts
from jaas.cluster.worker import Phases, _state
from jaas.engine.session.analysis import coincidence as local_coincidence
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import IndexFile
from jaas.formats.index import write_index


def _recut(sim_dir: Path, out: Path) -> jaas.Dataset:
    """The simulated stream re-cut into files each starting at a pair's delayed event
    (every 8th pair): those pairs straddle a file boundary."""
    ds = jaas.open(sim_dir, cache=ColumnCache())
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    table = pa.concat_tables([pq.read_table(f.path) for f in ds.files])
    t = table.column("t").to_numpy()
    starts = sorted({int(d) for d in ref.result.delayed[::8] if t[d] > t[d - 1]})
    (out / "index").mkdir(parents=True)
    for run_json in sim_dir.glob("run*.json"):
        shutil.copy(run_json, out / run_json.name)
    run = int(table.column("run")[0].as_py())
    for seq, (a, b) in enumerate(itertools.pairwise([0, *starts, len(t)])):
        meta = {"jaas.file_seq": str(seq), "jaas.run": str(run)}
        write_index(table.slice(a, b - a), out / "index" / f"run{run:06d}_{seq:04d}.parquet",
                    metadata=meta)  # fmt: skip
    return jaas.open(out, cache=ColumnCache())


def _phases(handle: Cluster) -> int:
    return sum(handle.client.run(lambda dask_worker: len(_state(dask_worker).phases)).values())


def test_a_workers_files_are_one_partition(handle: Cluster, sim_dir: Path, tmp_path: Path) -> None:
    ds = _recut(sim_dir, tmp_path / "recut")
    assert len(ds.files) > 8
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    handle.client.run(lambda dask_worker: setattr(_state(dask_worker), "phases", Phases()))
    res = coincidence(ds, client=handle, **QUERY)  # type: ignore[arg-type]
    assert_identical(res, ref)
    info = res.backend_info
    owner = [info.owners[os.path.abspath(f.path)] for f in ds.files]
    runs = [w for w, _ in itertools.groupby(owner)]
    assert len(runs) == len(set(runs)) == 2  # contiguous blocks, one per worker
    assert [w for *_, w in info.partitions] == runs  # one partition each, on its owner
    assert [lo for _, lo, _, _ in info.partitions[1:]] == [ds.files[owner.index(runs[1])].t_min]

    # pairs whose prompt and delayed are in different files of the same worker
    first_row = np.cumsum([0, *(f.n_events for f in ds.files)])
    file_of = np.searchsorted(first_row, res.result.delayed, side="right") - 1
    prompt_file = np.searchsorted(first_row, res.result.prompt, side="right") - 1
    inner = (prompt_file != file_of) & (np.array(owner)[prompt_file] == np.array(owner)[file_of])
    assert inner.sum() >= 4

    # every partition's veto phase is remembered, also the one whose halo comes from
    # the other worker: a query changing only a pair cut (not the halo) adds none
    assert _phases(handle) == len(info.partitions)
    changed = dict(QUERY, prompt="E > 0.7 MeV and not muon")
    again = coincidence(ds, client=handle, **changed)  # type: ignore[arg-type]
    assert_identical(again, local_coincidence(ds, **changed))  # type: ignore[arg-type]
    assert _phases(handle) == len(info.partitions)


def test_block_cuts_follow_owners_and_split_big_runs() -> None:
    files = [IndexFile(f"f{i}", 1, i, 10, 100 * i, 100 * i + 99, i) for i in range(8)]
    owners: list[str | None] = ["a", "a", "a", "b", "b", "a", "a", "a"]
    assert block_cuts(files, owners) == [300, 500]
    assert block_cuts(files, ["a"] * 8) == []
    assert block_cuts(files, ["a"] * 8, max_events=40) == [400]  # 80 events: 2 parts
    assert block_cuts(files, ["a"] * 8, max_events=30) == [300, 600]  # 3 parts
    assert block_cuts(files, ["a"] * 8, threads={"a": 2}) == [400]  # side by side
    assert block_cuts(files, owners, threads={"a": 2, "b": 3}) == [200, 300, 400, 500, 700]
    assert block_cuts([], []) == []
