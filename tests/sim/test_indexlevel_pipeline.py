"""The faster index-mode pipeline keeps the output: same order, same rows, errors surface."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaas._io import adler32_file
from jaas.errors import ConfigError
from jaas.formats.schema import INDEX_SCHEMA, TRUTH_SCHEMA
from jaas.sim.params import SimConfig
from jaas.sim.run import simulate
from jaas.sim.stream import generate_batches, generate_truth, prefetch
from jaas.sim.truth import Events


def test_order_matches_two_key_sort_with_and_without_equal_times() -> None:
    rng = np.random.default_rng(3)
    for t in (rng.permutation(1000).astype(np.int64), rng.integers(0, 50, 1000)):
        uid = rng.permutation(len(t)).astype(np.int64)
        ev = Events.make(len(t), t=t, uid=uid, src=0, role=0, E_true=1.0, x=0, y=0, z=0)
        assert np.array_equal(ev.order(), np.lexsort((uid, t)))


def test_prefetch_keeps_order_and_reraises_the_producer_error() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("bad chunk")

    it = prefetch(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="bad chunk"):
        next(it)


def test_leaving_a_prefetch_loop_early_stops_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    for x in prefetch(endless()):
        if x == 5:
            break
    n = len(produced)
    assert n <= 8  # at most the depth ahead (plus the one being put)


def test_chunks_are_the_same_with_prefetch_and_any_chunk_size() -> None:
    base = {"duration_s": 4 * 600, "seed": 5, "block_s": 600}
    one = Events.concat(c.events for c in generate_truth(SimConfig(**base, chunk_s=4 * 600)))
    many = Events.concat(c.events for c in prefetch(generate_truth(SimConfig(**base, chunk_s=600))))
    assert len(one) > 0
    for name in one.cols:
        assert np.array_equal(one[name], many[name], equal_nan=True), name


def test_batches_are_the_chunks_rows_cut_at_fixed_sizes() -> None:
    cfg = SimConfig(duration_s=3 * 600, seed=4, block_s=600, chunk_s=600)
    rows = Events.concat(c.events for c in generate_truth(cfg))
    for size in (1, 999, 4096, len(rows), len(rows) + 5):
        batches = list(generate_batches(cfg, size))
        assert [len(b) for b in batches[:-1]] == [size] * (len(batches) - 1)
        assert 0 < len(batches[-1]) <= size
        joined = Events.concat(batches)
        for name in rows.cols:
            assert np.array_equal(rows[name], joined[name], equal_nan=True), (size, name)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_files_are_the_same_bytes_for_one_or_two_threads(tmp_path: Path) -> None:
    # several files, batches that straddle chunk and file boundaries, every source present
    scale = {"li9he8": 200.0, "reactor_ibd": 500.0}
    cfg = {"duration_s": 1800.0, "seed": 11, "block_s": 300.0, "chunk_s": 600.0,
           "max_events_per_file": 7000, "scale": scale}  # fmt: skip
    one = simulate(cfg, tmp_path / "one", threads=1)
    two = simulate(cfg, tmp_path / "two", threads=2)
    simulate(cfg, tmp_path / "again", threads=2)
    a, b, c = _tree(tmp_path / "one"), _tree(tmp_path / "two"), _tree(tmp_path / "again")
    assert len([k for k in a if k.startswith("index/")]) >= 3
    assert len([k for k in a if k.startswith("truth/")]) == len([k for k in a if "index/" in k])
    assert a == b == c  # index, truth and run metadata files
    assert one.n_events == two.n_events > 0
    # the rows of the index and the truth files are the same events, in time order
    index = pa.concat_tables([pq.read_table(tmp_path / "one" / k) for k in a if "index/" in k])
    truth = pa.concat_tables([pq.read_table(tmp_path / "one" / k) for k in a if "truth/" in k])
    assert index.num_rows == truth.num_rows == one.n_events
    t = index["t"].to_numpy()
    assert np.array_equal(t, truth["t"].to_numpy()) and bool(np.all(np.diff(t) > 0))
    assert np.array_equal(truth["event_id"].to_numpy(), np.arange(one.n_events))
    assert pq.read_schema(tmp_path / "one" / "truth/run000001_0000.truth.parquet").equals(
        TRUTH_SCHEMA
    )
    assert index.schema.remove_metadata().equals(INDEX_SCHEMA.remove_metadata())


def test_other_seed_gives_other_files_and_threads_must_be_positive(tmp_path: Path) -> None:
    cfg = {"duration_s": 300.0, "block_s": 300.0, "chunk_s": 300.0}
    simulate({**cfg, "seed": 1}, tmp_path / "a")
    simulate({**cfg, "seed": 2}, tmp_path / "b")
    name = "index/run000001_0000.parquet"
    assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()
    with pytest.raises(ConfigError, match="threads"):
        simulate(cfg, tmp_path / "c", threads=0)


def test_records_give_the_size_and_checksum_of_the_files(tmp_path: Path) -> None:
    cfg = {"duration_s": 600.0, "block_s": 300.0, "chunk_s": 600.0, "max_events_per_file": 4000}
    summary = simulate(cfg, tmp_path / "a")
    assert len(summary.files) >= 4
    for rec in summary.files:  # as the writers report them
        path = tmp_path / "a" / rec.path
        assert rec.bytes == path.stat().st_size and rec.adler32 == adler32_file(path)
