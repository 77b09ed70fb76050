"""Streaming local queries (issue 13, item 5): data several times (up to 100x) the column
cache budget give the same result as with a large cache, with the cache bounded."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from jaas.engine.core.exposure import normalize_intervals
from jaas.engine.session.analysis import IBDSelection, build_query, dataset_units, prepare
from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import open_dataset
from jaas.engine.session.results import CoincidenceResult
from jaas.engine.session.stream import (
    PackedMask,
    _workers,
    columns_bytes,
    query_bytes,
    should_stream,
    should_stream_columns,
)
from jaas.sim.run import simulate

_POOLS: list[object] = []  # Arrow pools set for a test: kept alive with their buffers


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stream")
    cfg = {"duration_s": 4 * 3600, "seed": 7, "scale": {"reactor_ibd": 20.0},
           "max_events_per_file": 15_000, "write_truth": True}  # fmt: skip
    summary = simulate(cfg, out)
    assert len([f for f in summary.files if f.kind == "index"]) >= 5
    return out


def _same(got: CoincidenceResult, want: CoincidenceResult) -> None:
    g, w = got.result, want.result
    for name in ("prompt", "delayed", "veto_bits", "off_prompt", "off_delayed", "off_window"):
        assert np.array_equal(getattr(g, name), getattr(w, name)), name
    assert np.array_equal(g.veto_intervals, w.veto_intervals)
    assert g.exposure.to_dict() == w.exposure.to_dict()  # ns, MC live/pass counts
    assert g.accidentals == w.accidentals
    assert got.pairs.equals(want.pairs)
    assert got.offtime_pairs.equals(want.offtime_pairs)
    for name in want.masks:
        assert int(got.masks[name].sum()) == int(want.masks[name].sum())
        assert np.array_equal(np.asarray(got.masks[name]), want.masks[name])


def test_data_above_the_budget_stream_to_the_same_result(sim_dir: Path) -> None:
    big = ColumnCache(budget=4 * 1024**3)
    ds_big = open_dataset(sim_dir, cache=big)
    want = ds_big.ibd()
    spec, exprs, _ = build_query(prompt="E > 1 MeV", delayed="E > 1 MeV", dt="1 ms",
                                 units=dataset_units(ds_big))  # fmt: skip
    data = query_bytes(ds_big, prepare(spec, exprs))
    assert not should_stream(ds_big, prepare(spec, exprs))  # fits: in memory
    largest = max(f.n_events for f in ds_big.files) * data // ds_big.n_events
    budget = data // 4  # the data are four times the cache
    assert budget > 2 * largest  # a partition's files fit (else the cache keeps nothing)
    small = ColumnCache(budget=budget)
    ds = open_dataset(sim_dir, cache=small)
    assert should_stream(ds, prepare(spec, exprs))
    for _ in range(2):  # cold, then warm with evicted files
        got = ds.ibd()
        assert got.backend_info.address == "streaming"
        assert len(got.backend_info.partitions) == len([f for f in ds.files if f.n_events])
        _same(got, want)
        assert 0 < small.stats().peak_bytes <= budget
    assert want.result.prompt.size > 0
    # volume vetoes with MC exposure, since-last columns, isolation: the same too
    kw = {"prompt": "0.7 MeV < E < 12 MeV", "delayed": "1.9 MeV < E < 2.5 MeV",
          "dt": "1 ms", "dr": "1.5 m", "since": {"t_mu": "muon"},
          "isolation": [("E > 0.7 MeV", "1 ms", "1 ms")]}  # fmt: skip
    kw["vetoes"] = IBDSelection().vetoes
    _same(ds.coincidence(**kw), ds_big.coincidence(**kw))
    assert got.truth() == want.truth()  # reads whole columns through the cache


def test_streaming_memory_is_bounded_by_the_budget_and_one_partition(sim_dir: Path) -> None:
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=1))
    sel = IBDSelection()
    spec, exprs, _ = build_query(
        prompt=sel.prompt_condition, delayed=sel.delayed_condition,
        dt=(sel.dt_min, sel.dt_max), dr=sel.dr_max, vetoes=sel.vetoes, offtime=sel.offtime,
        units=dataset_units(ds),
    )  # fmt: skip
    data = query_bytes(ds, prepare(spec, exprs))
    budget = data // 5
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=budget))
    ds.ibd()  # imports and kernel compilation, then a cold cache for the measured query
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=budget))
    part = max(f.n_events for f in ds.files) * data // ds.n_events
    tracemalloc.start()
    try:
        res = ds.ibd()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.backend_info.address == "streaming"
    # the volume-veto MC samples: a fixed size (Spec.mc_samples), whatever the data size
    segments = normalize_intervals(ds.segments, what="segments")
    mc = sum(a.nbytes for a in ds.veto_memo.samples(segments, spec))
    # cache + one partition (its files and halo, masks, kernel arrays: stated as 4x the
    # largest file's columns) + the result's per-event arrays (veto bits, packed masks)
    per_event_result = 4 + len(exprs)
    bound = budget + mc + 4 * 2 * part + per_event_result * ds.n_events
    assert peak < bound, (peak, bound, data, mc)
    assert peak - mc < data  # below what gathering the columns would hold


def test_tiny_cache_gives_the_same_pairs_as_a_large_one(sim_dir: Path) -> None:
    big = ColumnCache(budget=4 * 1024**3)
    want = open_dataset(sim_dir, cache=big).ibd().result
    data_bytes = big.stats().bytes_cached
    assert want.prompt.size > 0
    tiny = ColumnCache(budget=max(1, data_bytes // 100))  # below one file: keeps ~nothing
    ds = open_dataset(sim_dir, cache=tiny)
    for _ in range(2):  # cold, then again with evicted columns
        got = ds.ibd().result
        assert np.array_equal(got.prompt, want.prompt)
        assert np.array_equal(got.delayed, want.delayed)
        assert got.exposure.livetime_ns == want.exposure.livetime_ns
        stats = tiny.stats()
        assert stats.bytes_cached <= stats.peak_bytes <= stats.budget  # evicts, never grows


def test_a_file_changed_on_disk_is_a_clear_error(sim_dir: Path, tmp_path: Path) -> None:
    import shutil

    import pyarrow.parquet as pq

    from jaas.errors import FormatError

    src = sorted((sim_dir / "index").glob("*.parquet"))[:3]
    for p in src:
        shutil.copy(p, tmp_path / p.name)
    ds = open_dataset(tmp_path, cache=ColumnCache(budget=1))
    victim = tmp_path / src[1].name
    table = pq.read_table(victim)
    pq.write_table(table.slice(0, table.num_rows // 2), victim)
    with pytest.raises(FormatError, match="changed on disk: reopen the dataset"):
        ds.ibd()


def test_two_threads_stream_two_partitions_at_once_to_the_same_result(sim_dir: Path) -> None:
    want = open_dataset(sim_dir, cache=ColumnCache(budget=4 * 1024**3)).ibd()
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=1))
    sel = IBDSelection()
    spec, exprs, _ = build_query(
        prompt=sel.prompt_condition, delayed=sel.delayed_condition,
        dt=(sel.dt_min, sel.dt_max), dr=sel.dr_max, vetoes=sel.vetoes, offtime=sel.offtime,
        units=dataset_units(ds),
    )  # fmt: skip
    data = query_bytes(ds, prepare(spec, exprs))
    largest = max(f.n_events for f in ds.files) * data // ds.n_events
    budget = 6 * largest  # two partitions' files (each a file and its neighbours)
    assert budget < data
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=budget))
    assert _workers(ds, prepare(spec, exprs), list(ds.files), 2) == 2
    got = ds.ibd(threads=2)
    assert got.backend_info.address == "streaming"
    _same(got, want)
    # a budget for one partition's files only: one at a time, the same result
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=3 * largest))
    assert _workers(ds, prepare(spec, exprs), list(ds.files), 2) == 1
    _same(ds.ibd(threads=2), want)


def test_select_above_the_budget_streams_to_the_same_selection(sim_dir: Path) -> None:
    cond = "1.9 MeV < E < 2.5 MeV and r < 16 m"
    want = open_dataset(sim_dir, cache=ColumnCache(budget=4 * 1024**3)).select(cond)
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=1))
    names = ["file_id", "entry", "E", "x", "y", "z", "r"]
    budget = columns_bytes(ds, names) // 10  # the columns are 10x the cache
    cache = ColumnCache(budget=budget)
    ds = open_dataset(sim_dir, cache=cache)
    assert should_stream_columns(ds, names)
    got = ds.select(cond)
    assert isinstance(got.mask, PackedMask)  # streamed: 1 bit per event
    assert 0 < got.n == want.n < len(want.mask)
    assert np.array_equal(np.asarray(got.mask), want.mask)
    assert got.events_table.equals(want.events_table)
    assert got.hist("E", bins=20).values().tolist() == want.hist("E", bins=20).values().tolist()
    assert got.summary() == want.summary()
    assert 0 < cache.stats().peak_bytes <= budget
    # a column read later (not held) comes whole through the cache
    assert np.array_equal(np.asarray(got.columns["E"]), np.asarray(want.columns["E"]))


def test_streamed_peak_memory_at_ten_times_the_budget(sim_dir: Path) -> None:
    """Traced numpy memory plus the Arrow pool's own peak (Parquet buffers, which
    tracemalloc does not see) of a streamed IBD query with the data >= 10x the budget
    stay below budget + one partition's working set + the result's per-event parts."""
    import pyarrow as pa

    ds = open_dataset(sim_dir, cache=ColumnCache(budget=1))
    sel = IBDSelection()
    spec, exprs, _ = build_query(
        prompt=sel.prompt_condition, delayed=sel.delayed_condition,
        dt=(sel.dt_min, sel.dt_max), dr=sel.dr_max, vetoes=sel.vetoes, offtime=sel.offtime,
        units=dataset_units(ds),
    )  # fmt: skip
    data = query_bytes(ds, prepare(spec, exprs))
    budget = data // 10
    open_dataset(sim_dir, cache=ColumnCache(budget=budget)).ibd()  # imports, compilation
    ds = open_dataset(sim_dir, cache=ColumnCache(budget=budget))
    largest = max(f.n_events for f in ds.files)
    part = largest * data // ds.n_events  # one file's columns
    old = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(old)  # its own peak; never freed (buffers outlive it)
    _POOLS.append(pool)
    pa.set_memory_pool(pool)
    tracemalloc.start()
    try:
        res = ds.ibd()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(old)
    assert res.backend_info.address == "streaming"
    assert res.result.prompt.size > 0
    segments = normalize_intervals(ds.segments, what="segments")
    mc = sum(a.nbytes for a in ds.veto_memo.samples(segments, spec))  # fixed size
    # one partition: its file and neighbours (3 files), their concatenation with the
    # halo, masks and the kernels' work arrays: 8 files' columns at most
    per_partition = 8 * part
    # the result's per-event parts: veto bits (4 B) and the masks packed to bits, and
    # the veto intervals (16 B each)
    result = res.result.veto_bits.nbytes + res.result.veto_intervals.nbytes
    result += sum((ds.n_events + 7) // 8 for _ in exprs)
    bound = budget + mc + per_partition + result
    assert peak + pool.max_memory() < bound, (peak, pool.max_memory(), bound, data)
    assert res.result.veto_bits.nbytes == 4 * ds.n_events  # one array, not two
