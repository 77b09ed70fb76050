"""Distributed queries on a real scheduler with two worker processes: identical results,
locality, cache metrics."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from tests.cluster._compare import assert_identical, worker_of
from tests.cluster.conftest import SECOND

import jaas
from jaas.cluster import Cluster, coincidence
from jaas.engine.core.correlate import OffTime
from jaas.engine.session.analysis import coincidence as local_coincidence
from jaas.engine.session.analysis import veto
from jaas.engine.session.cache import ColumnCache

# pairs within 300 ms, a 1.2 s whole-detector veto after showering muons (longer than
# the 0.5 s partitions: its halo spans several partitions and both workers)
QUERY = {
    "prompt": "E > 0.5 MeV and not muon",
    "delayed": "E > 1 MeV and not muon",
    "dt": "300 ms",
    "mode": "all",
    "vetoes": [
        veto("detector", "muon", "1 ms", name="mu"),
        veto("detector", "muon and showering", "1.2 s", name="shower"),
    ],
    "offtime": OffTime(n=5, start_ns=SECOND),
    "since": {"t_mu": "muon"},
}


def _open(sim_dir: Path) -> jaas.Dataset:
    return jaas.open(sim_dir, cache=ColumnCache())


def test_identical_to_local_with_window_longer_than_partition(
    handle: Cluster, sim_dir: Path
) -> None:
    ds = _open(sim_dir)
    ref = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    res = coincidence(ds, client=handle, partition_ns=SECOND // 2, **QUERY)  # type: ignore[arg-type]
    assert_identical(res, ref)
    assert res.n_pairs > 100
    assert res.exposure.veto_ns > 10 * SECOND  # the long veto does matter
    info = res.backend_info
    assert len(info.partitions) >= 100
    assert {w for *_, w in info.partitions} == set(handle.workers())
    before, _ = res.spec.halo()
    assert before > 2 * (SECOND // 2)  # halo spans more than two partitions
    t = res.columns["t"]
    wp = worker_of(info, t[res.result.prompt])
    wd = worker_of(info, t[res.result.delayed])
    assert (wp != wd).any(), "expected pairs across the worker boundary"


def test_ibd_identical_with_cylinder_vetoes_and_accidentals(handle: Cluster, sim_dir: Path) -> None:
    ds = _open(sim_dir)
    ref = jaas.ibd(ds)
    res = handle.ibd(ds, partition_events=40)
    assert_identical(res, ref)
    assert res.exposure.mc_samples > 0  # the volume-veto Monte Carlo ran on the workers
    assert res.exposure.mc_pass_by_veto == ref.exposure.mc_pass_by_veto
    assert res.truth() is not None


def test_partitions_run_where_their_files_are_owned(handle: Cluster, sim_dir: Path) -> None:
    ds = _open(sim_dir)
    res = coincidence(ds, client=handle, **QUERY)  # type: ignore[arg-type]
    reg = handle.registry()
    owner = {p: w for w, v in reg["workers"].items() for p in v["files"]}
    assert sorted(owner) == sorted(str(Path(f.path).absolute()) for f in ds.files)
    assert reg["lost"] == {}
    # time-contiguous blocks: each worker owns one time range
    ranges = sorted((v["t_min"], v["t_max"]) for v in reg["workers"].values())
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))
    info = res.backend_info
    for _, t_lo, t_hi, worker in info.partitions:
        f = max(
            ds.files,
            key=lambda f: min(f.t_max + 1, t_hi) - max(f.t_min, t_lo),
        )
        assert worker == owner[str(Path(f.path).absolute())]


def test_second_query_hits_cache_and_reads_nothing(handle: Cluster, sim_dir: Path) -> None:
    ds = _open(sim_dir)
    coincidence(ds, client=handle, **QUERY)  # type: ignore[arg-type]
    before = handle.cache_stats()
    res = coincidence(ds, client=handle, **QUERY)  # type: ignore[arg-type]
    after = handle.cache_stats()
    assert res.n_pairs > 0
    assert sorted(after) == sorted(handle.workers())
    for w in after:
        assert after[w].bytes_read == before[w].bytes_read, w
        assert after[w].misses == before[w].misses, w
        assert after[w].hits > before[w].hits, w
        assert 0 < after[w].bytes_cached <= after[w].budget
    # a new cut: only its mask is computed, no index column is read again
    changed = dict(QUERY, delayed="E > 1.5 MeV and not muon")
    coincidence(ds, client=handle, **changed)  # type: ignore[arg-type]
    third = handle.cache_stats()
    n_events = ds.n_events
    grown = sum(third[w].bytes_read - after[w].bytes_read for w in third)
    assert grown == n_events  # the new mask, once per event (1 byte), by the file's owner


def test_progress_callback_and_repr(handle: Cluster, sim_dir: Path) -> None:
    seen: list[tuple[int, int]] = []
    ds = _open(sim_dir)
    res = coincidence(
        ds, client=handle, partition_events=100, on_progress=lambda d, n: seen.append((d, n)),
        **QUERY,  # type: ignore[arg-type]
    )  # fmt: skip
    n = len(res.backend_info.partitions)
    assert seen[-1] == (n, n)
    assert [d for d, _ in seen] == list(range(1, n + 1))
    assert "dashboard=http" in repr(handle)
    assert "<a href='http" in handle._repr_html_()
    assert res.provenance["backend"].startswith("dask tcp://")


def test_address_string_and_errors(cli_cluster: tuple[str, str, Path], sim_dir: Path) -> None:
    ds = _open(sim_dir)
    res = coincidence(ds, client=cli_cluster[0], **QUERY)  # type: ignore[arg-type]
    assert res.n_pairs == local_coincidence(ds, **QUERY).n_pairs  # type: ignore[arg-type]
    with pytest.raises(jaas.ConfigError, match="no cluster"):
        coincidence(ds, client=None, **QUERY)  # type: ignore[arg-type]


def test_overlapping_files_are_refused_by_name(handle: Cluster, sim_dir: Path) -> None:
    import dataclasses

    ds = _open(sim_dir)
    f0, f1 = ds.files[0], ds.files[1]
    bad = dataclasses.replace(ds, files=[f0, dataclasses.replace(f1, t_min=f0.t_min + 1)])
    with pytest.raises(jaas.ConfigError, match=r"overlap in time") as exc:
        coincidence(bad, client=handle, **QUERY)  # type: ignore[arg-type]
    assert f0.path in str(exc.value)


def test_one_argument_chooses_the_backend(handle: Cluster, sim_dir: Path) -> None:
    """``ds.ibd(client=...)`` runs on the cluster and equals the local result."""
    ds = _open(sim_dir)
    local = ds.ibd()
    remote = ds.ibd(client=handle)
    assert remote.provenance.get("backend")
    assert_identical(remote, local)
    by_address = ds.ibd(backend=handle.address)  # the registry picks Dask for tcp://
    assert by_address.backend_info.name == "dask"
    assert by_address.backend_info.address == handle.address
    assert_identical(by_address, local)
    assert local.backend_info.name == "local" and "backend" not in local.provenance


def test_zero_row_file_takes_no_part(handle: Cluster, sim_dir: Path, tmp_path: Path) -> None:
    """An index file without rows (e.g. a run's empty last file) changes nothing."""
    import pyarrow.parquet as pq

    ds = _open(sim_dir)
    first = pq.read_table(ds.files[0].path)
    empty = tmp_path / "empty.parquet"
    meta = {b"file_seq": b"999", b"run": str(ds.files[0].run).encode()}
    pq.write_table(first.slice(0, 0).replace_schema_metadata(meta), empty)
    with_empty = jaas.open([*(f.path for f in ds.files), str(empty)], cache=ColumnCache())
    assert with_empty.problems == [] and with_empty.n_events == ds.n_events
    local = local_coincidence(with_empty, **QUERY)  # type: ignore[arg-type]
    remote = coincidence(with_empty, client=handle, **QUERY)
    assert_identical(remote, local)
