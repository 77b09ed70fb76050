"""Veto bits and intervals stay on the workers until a user asks for them."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from tests.cluster._compare import assert_identical
from tests.cluster.test_backend import QUERY

import jaas
from jaas.cluster import Cluster, coincidence
from jaas.cluster.worker import KeptVetoes, _state
from jaas.engine.core.correlate import Result
from jaas.engine.session.analysis import coincidence as local_coincidence
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.results import LazyResult

SECOND = 1_000_000_000


def test_veto_arrays_fetched_on_first_access_identical(handle: Cluster, sim_dir: Path) -> None:
    ds = jaas.open(sim_dir, cache=ColumnCache())
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    res = coincidence(ds, client=handle, partition_ns=SECOND, **QUERY)  # type: ignore[arg-type]
    assert isinstance(res.result, LazyResult)
    assert not res.result.loaded  # nothing per event travelled with the query
    assert sum(handle.client.run(lambda dask_worker: _state(dask_worker).kept.nbytes).values())
    assert res.n_pairs == ref.n_pairs > 0  # pairs, exposure: eager
    assert res.exposure == ref.exposure
    assert not res.result.loaded
    np.testing.assert_array_equal(res.result.vetoed_by("shower"), ref.result.vetoed_by("shower"))
    assert res.result.loaded
    assert_identical(res, ref)
    plain = pickle.loads(pickle.dumps(res.result))
    assert type(plain) is Result
    np.testing.assert_array_equal(plain.veto_intervals, ref.result.veto_intervals)


def test_veto_arrays_recomputed_when_the_workers_dropped_them(
    handle: Cluster, sim_dir: Path
) -> None:
    ds = jaas.open(sim_dir, cache=ColumnCache())
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    res = coincidence(ds, client=handle, partition_ns=SECOND, **QUERY)  # type: ignore[arg-type]

    def drop_kept(dask_worker: object = None) -> int:  # nested: pickled by value
        """Forget every kept veto array on this worker (as a full KeptVetoes would)."""
        state = _state(dask_worker)
        n = state.kept.nbytes
        state.kept = KeptVetoes()
        return n

    dropped = handle.client.run(drop_kept)
    assert sum(dropped.values()) > 0
    assert not res.result.loaded
    assert_identical(res, ref)  # recomputed on the owners: identical


def test_kept_vetoes_bounded_by_bytes() -> None:
    kept = KeptVetoes(budget=10_000)
    bits = np.ones(1000, np.uint32)  # 4000 bytes each
    empty = np.zeros((0, 2), np.int64)
    for i in range(4):
        kept.put("q", i, (bits, None, empty))
    assert kept.nbytes <= 10_000
    assert kept.get("q", 0) is None and kept.get("q", 3) is not None  # oldest dropped
    kept.put("q", 3, (bits, None, empty))  # stored again: counted once
    assert kept.nbytes == 2 * 4000
