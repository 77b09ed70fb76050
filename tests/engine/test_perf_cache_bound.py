"""A column cache far below the data size still gives the exact answer (issue 13, item 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jaas.engine.session.cache import ColumnCache
from jaas.engine.session.dataset import open_dataset
from jaas.sim.run import simulate


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cachebound")
    cfg = {"duration_s": 6 * 3600, "seed": 4, "scale": {"reactor_ibd": 20.0},
           "max_events_per_file": 20_000, "write_truth": False}  # fmt: skip
    summary = simulate(cfg, out)
    assert len([f for f in summary.files if f.kind == "index"]) >= 4
    return out


def test_tiny_cache_gives_the_same_pairs_as_a_large_one(sim_dir: Path) -> None:
    big = ColumnCache(budget=4 * 1024**3)
    want = open_dataset(sim_dir, cache=big).ibd().result
    data_bytes = big.stats().bytes_cached
    assert want.prompt.size > 0
    tiny = ColumnCache(budget=max(1, data_bytes // 100))
    ds = open_dataset(sim_dir, cache=tiny)
    for _ in range(2):  # cold, then again with evicted columns
        got = ds.ibd().result
        assert np.array_equal(got.prompt, want.prompt)
        assert np.array_equal(got.delayed, want.delayed)
        assert got.exposure.livetime_ns == want.exposure.livetime_ns
        stats = tiny.stats()
        assert stats.bytes_cached <= stats.budget  # the cache evicts instead of growing
