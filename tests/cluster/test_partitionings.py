"""Any partitioning and batching of a distributed query gives the local result; the
result ships only the rows its pairs reference, whole columns load on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.cluster._compare import assert_identical
from tests.cluster.test_backend import QUERY

import jaas
from jaas.cluster import Cluster, coincidence
from jaas.cluster.columns import LazyColumns
from jaas.engine.session.analysis import coincidence as local_coincidence
from jaas.engine.session.cache import ColumnCache

SECOND = 1_000_000_000
_REF: dict[str, object] = {}


def _ref(ds: jaas.Dataset) -> object:
    if "ref" not in _REF:
        _REF["ref"] = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    return _REF["ref"]


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    by_time=st.booleans(),
    events=st.integers(min_value=3, max_value=700),
    ns=st.integers(min_value=SECOND // 10, max_value=40 * SECOND),
)
def test_random_partitionings_identical(
    handle: Cluster, sim_dir: Path, by_time: bool, events: int, ns: int
) -> None:
    ds = jaas.open(sim_dir, cache=ColumnCache())
    kw = {"partition_ns": ns} if by_time else {"partition_events": events}
    res = coincidence(ds, client=handle, **kw, **QUERY)  # type: ignore[arg-type]
    assert_identical(res, _ref(ds))


def test_pairs_need_no_whole_column(handle: Cluster, sim_dir: Path) -> None:
    ds = jaas.open(sim_dir, cache=ColumnCache())
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    res = coincidence(ds, client=handle, partition_events=50, **QUERY)  # type: ignore[arg-type]
    cols = res.columns
    assert isinstance(cols, LazyColumns) and not cols.loaded
    assert res.n_pairs > 0
    pd.testing.assert_frame_equal(res.pairs, ref.pairs)
    pd.testing.assert_frame_equal(res.offtime_pairs, ref.offtime_pairs)
    assert not cols.loaded  # served from the rows the workers sent
    np.testing.assert_array_equal(res.result.veto_bits, ref.result.veto_bits)
    assert sorted(cols) == sorted(ref.columns) and "E" in cols and "nope" not in cols
    np.testing.assert_array_equal(cols["E"], ref.columns["E"])  # loads on demand
    assert cols.loaded
    for name in ref.masks:
        np.testing.assert_array_equal(res.masks[name], ref.masks[name])


def test_columns_from_the_workers_with_node_local_storage(
    handle: Cluster, sim_dir: Path, tmp_path: Path
) -> None:
    """Node-local files: the client does not read them, the owners send the columns."""
    import shutil

    copy = tmp_path / "node-local"
    shutil.copytree(sim_dir, copy)
    ds = jaas.open(copy, cache=ColumnCache())
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    res = coincidence(ds, client=handle, local_storage=True, **QUERY)  # type: ignore[arg-type]
    before = ds.cache.stats().bytes_read
    assert_identical(res, ref)
    assert ds.cache.stats().bytes_read == before  # nothing read on the client


def test_remembered_veto_work_follows_the_veto_conditions(handle: Cluster, sim_dir: Path) -> None:
    """Workers remember each partition's veto phase: a changed veto condition or
    window must not reuse it, a changed pair cut may."""
    from jaas.engine.session.analysis import veto

    ds = jaas.open(sim_dir, cache=ColumnCache())
    for vetoes in (
        QUERY["vetoes"],
        [veto("detector", "muon", "1 ms", name="mu")],
        [veto("detector", "muon and showering", "1 ms", name="mu")],
        [veto("detector", "muon", "30 ms", name="mu")],
    ):
        query = dict(QUERY, vetoes=vetoes)
        ref = local_coincidence(ds, **query)  # type: ignore[arg-type]
        res = coincidence(ds, client=handle, partition_events=60, **query)  # type: ignore[arg-type]
        assert_identical(res, ref)


def test_packed_bits_and_intervals_round_trip() -> None:
    from jaas.cluster.worker import pack_bits, pack_intervals, unpack_bits, unpack_intervals

    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 1000):
        for p in (0.0, 0.05, 0.9):
            bits = (rng.random(n) < p).astype(np.uint32) * np.uint32(9)
            back = unpack_bits(pack_bits(bits), n)
            assert back.dtype == np.uint32 and np.array_equal(back, bits)
    iv = np.sort(rng.integers(10**17, 10**17 + 10**11, 400)).reshape(-1, 2)
    packed = pack_intervals(iv)
    assert packed is not None
    np.testing.assert_array_equal(unpack_intervals(packed), iv)
    assert pack_intervals(np.array([[0, 1 << 33]], np.int64)) is None  # too far: as is
    assert pack_intervals(np.empty((0, 2), np.int64)) is None
