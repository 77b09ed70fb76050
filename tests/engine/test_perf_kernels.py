"""The fast kernels (off-time sweep, volume veto) agree with the straightforward ones."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jaas.engine.core import kernels as _kernels
from jaas.engine.core.correlate import Coincidence, Isolation, OffTime, Spec, Veto, correlate

K: Any = _kernels


def _stream(seed: int, n: int, span: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, span, n)).astype(np.int64)
    t[n // 3 : n // 3 + 5] = t[n // 3]  # a run of equal times
    cols = {"t": t}
    for c in ("x", "y", "z"):
        cols[c] = rng.uniform(-2, 2, n).astype(np.float32)
    cols["prompt"] = rng.random(n) < 0.5
    cols["delayed"] = rng.random(n) < 0.3
    cols["iso"] = rng.random(n) < 0.05
    return cols


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("step_extra", [0, 1, 37])
@pytest.mark.parametrize("with_iso", [False, True])
def test_sweep_equals_per_window_loop(mode: int, step_extra: int, with_iso: bool) -> None:
    cols = _stream(7 + mode + step_extra, 4000, 400_000)
    t = cols["t"]
    rng = np.random.default_rng(mode)
    bits = (rng.random(t.size) < 0.1).astype(np.uint32)
    seg = np.array([[-5, 150_000], [151_000, 260_000], [263_000, 400_001]], np.int64)
    dt_min, dt_max = 20, 200
    step = dt_max - dt_min + step_extra
    start, nk = 300, 120
    shifts = start + step * np.arange(nk, dtype=np.int64)
    if with_iso:
        iso = cols["iso"][None, :].copy()
        before, after = np.array([50], np.int64), np.array([30], np.int64)
    else:
        iso = np.zeros((0, t.size), np.bool_)
        before = after = np.empty(0, np.int64)
    didx = np.flatnonzero(cols["delayed"])
    common = (t, cols["x"], cols["y"], cols["z"], seg[:, 0].copy(), seg[:, 1].copy(), bits)
    rest = (dt_min, dt_max, 2.0, mode, iso, before, after)
    ref = K.coincide(common, cols["prompt"], didx, shifts, rest)
    got = K.coincide_sweep(common, cols["prompt"], didx, start, step, nk, rest)
    as_set = lambda r: sorted(zip(*(a.tolist() for a in r), strict=True))  # noqa: E731
    assert len(ref[0]) > 50  # the case is not empty
    assert as_set(got) == as_set(ref)


def test_ibd_like_stream_identical_for_any_partitioning_and_threads() -> None:
    cols = _stream(3, 30_000, 3_000_000)
    rng = np.random.default_rng(5)
    n = cols["t"].size
    cols["muon"] = rng.random(n) < 0.01
    for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        v = rng.uniform(-2, 2, n).astype(np.float32)
        v[rng.random(n) < 0.3] = np.nan
        cols[c] = v
    spec = Spec(
        vetoes=(
            Veto.detector("mu", "muon", 1_500),
            Veto.cylinder("cyl", "muon", 20_000, 0.8),
            Veto.sphere("sph", "iso", 5_000, 0.5),
        ),
        coincidence=Coincidence(
            "prompt",
            "delayed",
            1_000,
            dr_max=1.5,
            isolation=(Isolation("iso", 200, 300),),
            offtime=OffTime(n=50, start_ns=20_000),
        ),
        mc_samples=2_000,
    )
    segs = [[0, 1_400_000], [1_400_500, 3_000_000]]
    base = correlate(cols, spec, segs)
    assert base.prompt.size > 0 and base.off_prompt.size > 0
    assert base.vetoed_by("cyl").any() and base.vetoed_by("sph").any()
    for parts, threads in ((7, 1), (13, 2), (2, 2)):
        r = correlate(cols, spec, segs, partition_events=n // parts + 1, threads=threads)
        np.testing.assert_array_equal(r.prompt, base.prompt)
        np.testing.assert_array_equal(r.delayed, base.delayed)
        np.testing.assert_array_equal(r.veto_bits, base.veto_bits)
        np.testing.assert_array_equal(r.off_prompt, base.off_prompt)
        np.testing.assert_array_equal(r.off_window, base.off_window)
        np.testing.assert_array_equal(r.veto_intervals, base.veto_intervals)
        assert r.exposure == base.exposure


@pytest.mark.parametrize("line", [True, False])
def test_volume_veto_marking_equals_query_loop(line: bool) -> None:
    cols = _stream(11, 6000, 600_000)
    t = cols["t"]
    rng = np.random.default_rng(2)
    trk = [rng.uniform(-2, 2, t.size).astype(np.float32) for _ in range(6)]
    trk[0][::7] = np.nan  # untracked
    for k in range(3):  # degenerate track: a == b (distance to the point)
        trk[k + 3][::11] = trk[k][::11]
    geo_cols = trk if line else [cols["x"], cols["y"], cols["z"]] * 2
    seg = np.array([[100, 300_000], [300_100, 590_000]], np.int64)
    trig = np.flatnonzero(cols["iso"] & (t >= 100) & (t < 590_000))
    idx, *g = K.volume_triggers(trig, *geo_cols, line)
    bits = np.zeros(t.size, np.uint32)
    K.mark_volume_veto(
        t, cols["x"], cols["y"], cols["z"], *seg.T.copy(), idx, *g, 9_000, 0.6, np.uint32(4), bits
    )
    q = K.in_segments(t, seg[:, 0].copy(), seg[:, 1].copy())
    xyz = [np.asarray(cols[c][q], np.float64) for c in ("x", "y", "z")]
    hit = K.volume_veto(t[q], *xyz, q, t[idx], idx, *g[:6], 9_000, 0.6, line)
    expect = np.zeros(t.size, np.uint32)
    expect[q[hit]] = 4
    assert 50 < hit.sum() < q.size
    np.testing.assert_array_equal(bits, expect)


def test_veto_phase_is_reused_only_for_the_same_read_only_columns() -> None:
    from jaas.engine.core import partition

    cols = _stream(4, 20_000, 2_000_000)
    rng = np.random.default_rng(9)
    cols["muon"] = rng.random(cols["t"].size) < 0.01
    for a in cols.values():
        a.setflags(write=False)
    spec = Spec(
        vetoes=(Veto.detector("mu", "muon", 2_000), Veto.sphere("sph", "iso", 3_000, 0.7)),
        coincidence=Coincidence("prompt", "delayed", 1_000, dr_max=1.5),
        mc_samples=500,
    )
    segs = [[0, 2_000_000]]
    memo = partition.VetoMemo()
    first = correlate(cols, spec, segs, partition_events=7_000, veto_memo=memo)
    assert memo.phases(cols, spec, np.array(segs, np.int64))  # remembered, for these arrays
    with pytest.raises(ValueError, match="read-only"):  # shared with the memo: read-only
        first.veto_bits[:] = 0
    warm = correlate(cols, spec, segs, partition_events=7_000, veto_memo=memo)
    writable = {k: v.copy() for k, v in cols.items()}  # not memoised: computed afresh
    fresh = correlate(writable, spec, segs, partition_events=7_000)
    np.testing.assert_array_equal(warm.veto_bits, fresh.veto_bits)
    assert warm.vetoed_by("sph").any()
    np.testing.assert_array_equal(warm.prompt, fresh.prompt)
    assert warm.exposure == fresh.exposure
    # a changed veto, or changed pair cuts, give the fresh results
    for other in (
        Spec(vetoes=(Veto.detector("mu", "muon", 9_000),), coincidence=spec.coincidence),
        Spec(spec.vetoes, Coincidence("prompt", "delayed", 500, dr_max=1.0), mc_samples=500),
    ):
        got = correlate(cols, other, segs, partition_events=7_000, veto_memo=memo)
        ref = correlate(writable, other, segs, partition_events=7_000)
        np.testing.assert_array_equal(got.veto_bits, ref.veto_bits)
        np.testing.assert_array_equal(got.prompt, ref.prompt)
        np.testing.assert_array_equal(got.delayed, ref.delayed)
        assert got.exposure == ref.exposure
    memo.clear()
    assert not memo.phases(cols, spec, np.array(segs, np.int64))
