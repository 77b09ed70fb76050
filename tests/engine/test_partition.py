"""Partition planning and identical results at any partitioning and thread count."""

from __future__ import annotations

import numpy as np
import pytest

from jaas.engine.core.correlate import (
    Coincidence,
    Isolation,
    OffTime,
    Result,
    SinceLast,
    Spec,
    Veto,
    correlate,
)
from jaas.engine.core.partition import plan_partitions

MS = 1_000_000


def test_plan_never_splits_equal_times_and_borrows_long_halos() -> None:
    t = np.array([0, 10, 10, 10, 20, 30, 40, 50, 60, 70], np.int64)
    parts = plan_partitions(t, halo_before_ns=35, halo_after_ns=15, target_events=2)
    cores = [(p.core_start, p.core_stop) for p in parts]
    assert cores[0] == (0, 1) and cores[1] == (1, 4)  # the three t=10 stay together
    assert [a for a, _ in cores[1:]] == [b for _, b in cores[:-1]]
    assert cores[-1][1] == t.size
    for p in parts:
        assert all(p.t_lo <= v < p.t_hi for v in t[p.core_start : p.core_stop])
        # the halo reaches back 35 ns over several neighbour partitions
        lo_t = t[p.core_start] - 35 if p.index else -(1 << 62)
        assert p.halo_start == np.searchsorted(t, lo_t, side="left")
        assert p.halo_stop == np.searchsorted(t, t[p.core_stop - 1] + 15, side="right")
    assert parts[-1].halo_start < parts[-3].core_stop  # halo spans a whole neighbour and more


def realistic(seed: int, seconds: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A 14 Hz-like stream (in compressed time: 1 s -> 1 ms scale kept) with muons."""
    rng = np.random.default_rng(seed)
    n = int(2_000 * seconds)
    t = np.sort(rng.integers(0, int(seconds * 1e9), n)).astype(np.int64)
    cols: dict[str, np.ndarray] = {"t": t}
    e = rng.uniform(0, 10, n)
    cols["muon"] = rng.random(n) < 0.02
    cols["prompt"] = (e > 0.7) & ~cols["muon"]
    cols["delayed"] = (e > 1.9) & (e < 4) & ~cols["muon"]
    for c in ("x", "y", "z"):
        cols[c] = rng.uniform(-3, 3, n).astype(np.float32)
    for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        v = rng.uniform(-5, 5, n).astype(np.float32)
        v[~cols["muon"]] = np.nan
        cols[c] = v
    segs = np.array([[0, int(0.4e9)], [int(0.45e9), int(seconds * 1e9)]], np.int64)
    return cols, segs


SPEC = Spec(
    vetoes=(
        Veto.detector("mu", "muon", 2 * MS),
        Veto.cylinder("cyl", "muon", 30 * MS, 2.0),
        Veto.sphere("n", "delayed", 1 * MS, 0.5),
    ),
    coincidence=Coincidence(
        "prompt",
        "delayed",
        1 * MS,
        0,
        3.0,
        "exactly_one",
        (Isolation("delayed", 0, MS // 2),),
        OffTime(5, 20 * MS),
    ),
    since=(SinceLast("tmu", "muon", 100 * MS),),
    mc_samples=2000,
)


def same(a: Result, b: Result) -> None:
    for name in (
        "prompt",
        "delayed",
        "veto_bits",
        "veto_intervals",
        "off_prompt",
        "off_delayed",
        "off_window",
    ):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name], err_msg=name)
    assert a.exposure == b.exposure


@pytest.mark.parametrize(
    ("kw", "threads"),
    [
        ({"partition_events": 97}, 1),
        ({"partition_events": 1000}, 2),
        ({"partition_ns": MS}, 2),
        ({"partition_events": 7}, 3),
    ],
)
def test_identical_results_at_any_partitioning(kw: dict[str, int], threads: int) -> None:
    cols, segs = realistic(5, 2.0)
    whole = correlate(cols, SPEC, segs)
    assert whole.prompt.size > 5 and whole.off_prompt.size > 5  # the test has substance
    assert 0 < whole.exposure.mc_pass < whole.exposure.mc_live
    same(whole, correlate(cols, SPEC, segs, threads=threads, **kw))
