"""The direct path (client -> worker RPC, past the scheduler): identical results, and the
task path as its fallback when the cached assignment is stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cluster._compare import assert_identical
from tests.cluster.conftest import SECOND
from tests.cluster.test_backend import QUERY

import jaas
from jaas.cluster import Cluster, coincidence, connect
from jaas.cluster import local as local_cluster
from jaas.cluster.local import LocalCluster
from jaas.engine.session.analysis import coincidence as local_coincidence
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.results import LazyResult


def _open(sim_dir: Path) -> jaas.Dataset:
    return jaas.open(sim_dir, cache=ColumnCache())


def _triples(ds: jaas.Dataset) -> list[tuple[str, int, int]]:
    return [(os.path.abspath(f.path), f.t_min, f.t_max) for f in ds.files]


def test_direct_identical_to_tasks_and_local(handle: Cluster, sim_dir: Path) -> None:
    ds = _open(sim_dir)
    ref = jaas.ibd(ds)
    runs = {}
    for direct in (True, False):
        handle.direct = direct
        before = dict(handle.paths)
        try:
            runs[direct] = handle.ibd(ds, partition_events=40)
        finally:
            handle.direct = True
        used = {k: handle.paths[k] - before.get(k, 0) for k in ("direct", "tasks")}
        assert used == ({"direct": 1, "tasks": 0} if direct else {"direct": 0, "tasks": 1})
    for res in runs.values():
        assert isinstance(res.result, LazyResult)
        assert not res.result.loaded  # the veto arrays stayed on the workers
        assert_identical(res, ref)  # fetches them (direct, or a task)
        assert str(res.truth()) == str(ref.truth())
    a, b = runs[True].backend_info, runs[False].backend_info
    assert a.partitions == b.partitions and len(a.partitions) > 10
    assert {w for *_, w in a.partitions} == set(handle.workers())


def test_direct_halo_across_workers(handle: Cluster, sim_dir: Path) -> None:
    """A 1.2 s veto on 0.5 s partitions: batches fetch rows of the other worker's files
    worker to worker."""
    ds = _open(sim_dir)
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    before = handle.paths["direct"], handle.paths["tasks"]
    res = coincidence(ds, client=handle, partition_ns=SECOND // 2, **QUERY)  # type: ignore[arg-type]
    assert (handle.paths["direct"], handle.paths["tasks"]) == (before[0] + 1, before[1])
    assert_identical(res, ref)
    assert res.backend_info.attempts == 1


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    lc = local_cluster.start(2, state_dir=tmp_path / "state", dashboard=False)
    try:
        yield lc
    finally:
        local_cluster.stop(tmp_path / "state")


@pytest.mark.slow
def test_worker_killed_between_queries_falls_back(own_cluster: LocalCluster, sim_dir: Path) -> None:
    ds = _open(sim_dir)
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    with connect(own_cluster.address) as c:
        first = c.coincidence(ds, **QUERY)
        assert_identical(first, ref)
        assert c.paths == {"direct": 1}
        stale = c.assignment(_triples(ds), False)  # cached: no scheduler round trip
        victim = stale[0][_triples(ds)[-1][0]]
        assert victim is not None
        pid = c.client.run(os.getpid)[victim]
        os.kill(pid, signal.SIGKILL)
        # as if the registry's event had not arrived yet: the client still sends the
        # victim its partitions, fails to reach it and reruns them as tasks
        c._assigned[(tuple(_triples(ds)), False)] = stale
        res = c.coincidence(ds, **QUERY)
        assert c.paths == {"direct": 2, "tasks": 1}
        assert_identical(res, ref)
        assert victim not in {w for *_, w in res.backend_info.partitions}
        assert res.backend_info.attempts == 2
        again = c.coincidence(ds, **QUERY)  # a fresh assignment, cached again: direct
        assert c.paths == {"direct": 3, "tasks": 1}
        assert_identical(again, ref)


@pytest.mark.slow
def test_new_worker_claiming_files_is_used(own_cluster: LocalCluster, sim_dir: Path) -> None:
    ds = _open(sim_dir)
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    log = open(Path(own_cluster.state_dir) / "extra-worker.log", "wb")  # noqa: SIM115
    extra = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", own_cluster.address,
         "--nthreads", "1", "--no-nanny", "--preload", "jaas.cluster.worker",
         "--no-dashboard", "--name", "extra"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        with connect(own_cluster.address) as c:
            assert_identical(c.coincidence(ds, **QUERY), ref)  # assigned, cached
            c.client.wait_for_workers(3, timeout=60)
            new = next(w for w in c.workers() if w not in own_cluster_workers(c, ds))
            claimed = _triples(ds)[-3:]

            async def claim(dask_worker: object = None) -> object:
                return await dask_worker.scheduler.jaas_claim(  # type: ignore[attr-defined]
                    worker=dask_worker.address,
                    files=claimed,
                    local=False,  # type: ignore[attr-defined]
                )

            c.client.run(claim, workers=[new])
            deadline = time.monotonic() + 10
            while True:  # the registry's event drops the cached assignment
                res = c.coincidence(ds, **QUERY)
                ran = {w for *_, w in res.backend_info.partitions}
                if new in ran or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert new in ran, "the claimed files never ran on the new worker"
            assert res.backend_info.owners[claimed[-1][0]] == new
            assert_identical(res, ref)
            assert c.paths["tasks"] == 0
    finally:
        extra.kill()
        extra.wait()
        log.close()


def own_cluster_workers(c: Cluster, ds: jaas.Dataset) -> set[str]:
    """Workers owning files of ``ds``."""
    return {w for w in c.assignment(_triples(ds), False)[0].values() if w is not None}
