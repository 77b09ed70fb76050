"""A worker process killed (SIGKILL) in the middle of a query."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.cluster._compare import assert_identical
from tests.cluster.test_backend import QUERY

import jaas
from jaas.cluster import coincidence, connect
from jaas.cluster import local as local_cluster
from jaas.cluster.local import LocalCluster
from jaas.engine.session.analysis import coincidence as local_coincidence
from jaas.engine.session.cache import ColumnCache

pytestmark = pytest.mark.slow


def _killer(client: object, victim: str, pid: int) -> object:
    state = {"killed": False}

    def on_progress(done: int, total: int) -> None:
        if not state["killed"]:
            assert done < total  # the query is really in the middle
            os.kill(pid, signal.SIGKILL)
            state["killed"] = True

    return on_progress


@pytest.fixture(scope="module")
def three_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three worker processes of this module's own: each test kills one."""
    state = tmp_path_factory.mktemp("kill-cluster")
    lc = local_cluster.start(3, state_dir=state, dashboard=False)
    try:
        yield lc
    finally:
        local_cluster.stop(state)


def _victim(c: jaas.cluster.Cluster, ds: jaas.Dataset) -> tuple[str, int, list[str]]:
    """The worker owning the last file of ``ds``, its pid and its files of ``ds``."""
    pids = c.client.run(os.getpid)
    paths = [str(Path(f.path).absolute()) for f in ds.files]
    reg = c.registry()
    victim = next(w for w, v in reg["workers"].items() if paths[-1] in v["files"])
    return victim, pids[victim], [p for p in reg["workers"][victim]["files"] if p in paths]


def test_killed_worker_shared_storage_identical_result(
    three_workers: LocalCluster, sim_dir: Path
) -> None:
    ds = jaas.open(sim_dir, cache=ColumnCache())
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    with connect(three_workers.address) as c:
        c.coincidence(ds, **QUERY)  # assigns the files (and warms the caches)
        victim, pid, files = _victim(c, ds)
        res = coincidence(
            ds, client=c, partition_ns=500_000_000, on_progress=_killer(c, victim, pid),
            **QUERY,  # type: ignore[arg-type]
        )  # fmt: skip
        assert_identical(res, ref)
        assert res.dataset.lost == ds.lost == []
        reg = c.registry()
        assert victim not in reg["workers"]
        assert len(reg["workers"]) == 2
        assert set(files) <= {p for v in reg["workers"].values() for p in v["files"]}


def test_killed_worker_local_storage_reports_lost_livetime(
    three_workers: LocalCluster, sim_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "node-local"  # new paths: registered as node-local files
    shutil.copytree(sim_dir, copy)
    ds = jaas.open(copy, cache=ColumnCache())
    with connect(three_workers.address, local_storage=True) as c:
        c.coincidence(ds, **QUERY)
        victim, pid, files = _victim(c, ds)
        # frozen until the first partition of another worker is in, then killed: its own
        # partitions cannot have come back first (a fast warm worker on a loaded machine
        # could otherwise finish them all before the client sees the first result)
        os.kill(pid, signal.SIGSTOP)
        res = coincidence(
            ds, client=c, partition_ns=500_000_000, on_progress=_killer(c, victim, pid),
            **QUERY,  # type: ignore[arg-type]
        )  # fmt: skip
        assert c.registry()["lost"] == dict.fromkeys(files, victim)
        assert res.backend_info.attempts == 2

    # the unreachable files are the victim's: from the end of the last file before them
    # to the end of the run (they are the later half)
    lost_idx = [i for i, f in enumerate(ds.files) if str(Path(f.path).absolute()) in files]
    assert lost_idx == list(range(lost_idx[0], len(ds.files)))
    start = ds.files[lost_idx[0] - 1].t_max + 1
    end = int(ds.segments[-1, 1])
    (entry,) = res.dataset.lost
    assert (entry.start, entry.end) == (start, end)
    assert victim in entry.what
    assert all(Path(ds.files[i].path).name in entry.what for i in lost_idx)
    exp = res.exposure
    assert exp.good_ns == ds.segments[0, 1] - ds.segments[0, 0] - (end - start)
    assert exp.bad_ns == end - start
    assert exp.span_ns == ds.segments[-1, 1] - ds.segments[0, 0]
    assert exp.livetime_ns < exp.good_ns

    # identical to the local engine on the reachable files with the lost time cut out
    kept = dataclasses.replace(
        ds,
        files=ds.files[: lost_idx[0]],
        segments=np.array([[ds.segments[0, 0], start]], np.int64),
        lost=[entry],
    )
    ref = local_coincidence(kept, **QUERY)  # type: ignore[arg-type]
    for name in ("prompt", "delayed", "veto_bits", "veto_intervals", "off_prompt"):
        np.testing.assert_array_equal(getattr(res.result, name), getattr(ref.result, name))
    assert exp.livetime_ns == ref.exposure.livetime_ns
    assert exp.veto_ns == ref.exposure.veto_ns
    assert res.n_pairs == ref.n_pairs > 0
