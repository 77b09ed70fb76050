"""Warm queries on read-only columns run the pair kernels on the candidate sub-stream
(``partition.Candidates``: prompt or delayed, not vetoed); their results must be those
of the full stream, for any cuts, vetoes, modes, off-time windows and partitioning."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaas.engine.core.correlate import (
    Coincidence,
    Isolation,
    Mode,
    OffTime,
    SinceLast,
    Spec,
    Veto,
    VetoMemo,
    correlate,
)
from jaas.engine.core.partition import VetoPhase, plan_partitions, run_partitions

MS = 1_000_000


def stream(seed: int, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Events at ~2 kHz (ties in time included), muons, energies, vertices, two segments."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, n * 500_000, n)).astype(np.int64)
    t[1::9] = t[0::9][: t[1::9].size]  # equal times
    t.sort()
    e = rng.uniform(0, 10, n)
    cols: dict[str, np.ndarray] = {"t": t, "E": e, "muon": rng.random(n) < 0.03}
    for c in ("x", "y", "z"):
        cols[c] = rng.uniform(-3, 3, n).astype(np.float32)
    mid = int(t[n // 2])
    segs = np.array([[int(t[0]), mid], [mid + 3 * MS, int(t[-1]) + 1]], np.int64)
    return cols, segs


def frozen(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: v.copy() for k, v in cols.items()}
    for v in out.values():
        v.setflags(write=False)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    p_lo=st.floats(0, 3),
    d_lo=st.floats(0, 5),
    dt_min=st.integers(0, MS // 2),
    width=st.integers(1, 3 * MS),
    dr=st.one_of(st.none(), st.floats(0.5, 6)),
    mode=st.sampled_from(["all", "nearest", "exactly_one"]),
    veto_ms=st.integers(0, 5),
    off=st.one_of(st.none(), st.tuples(st.integers(1, 30), st.integers(0, 3))),
    part=st.one_of(st.none(), st.integers(50, 800)),
)
def test_candidate_substream_gives_the_full_stream_result(
    seed: int,
    p_lo: float,
    d_lo: float,
    dt_min: int,
    width: int,
    dr: float | None,
    mode: Mode,
    veto_ms: int,
    off: tuple[int, int] | None,
    part: int | None,
) -> None:
    cols, segs = stream(seed, 3000)
    cols["prompt"] = (cols["E"] > p_lo) & ~cols["muon"]
    cols["delayed"] = (cols["E"] > d_lo) & (cols["E"] < d_lo + 2) & ~cols["muon"]
    vetoes = (Veto.detector("mu", "muon", veto_ms * MS),) if veto_ms else ()
    offtime = None
    if off is not None:  # step below the width: overlapping windows (the shifts kernel)
        n, k = off
        offtime = OffTime(n, 20 * MS, None if k == 0 else max(1, width // k))
    spec = Spec(
        vetoes=vetoes,
        coincidence=Coincidence(
            "prompt",
            "delayed",
            dt_min + width,
            dt_min,
            dr,
            mode,
            offtime=offtime,
        ),
        since=(SinceLast("tmu", "muon", 50 * MS, at="pairs"),),
    )
    full = correlate(cols, spec, segs, partition_events=part)  # writeable: full stream
    memo = VetoMemo()
    ro = frozen(cols)
    first = correlate(ro, spec, segs, partition_events=part, veto_memo=memo)
    warm = correlate(ro, spec, segs, partition_events=part, veto_memo=memo)
    for got in (first, warm):
        for name in ("prompt", "delayed", "off_prompt", "off_delayed", "off_window",
                     "veto_bits", "veto_intervals"):  # fmt: skip
            np.testing.assert_array_equal(getattr(got, name), getattr(full, name), name)
        assert got.exposure == full.exposure and got.accidentals == full.accidentals
        assert got.pair_columns.keys() == full.pair_columns.keys()
        for key, values in full.pair_columns.items():
            np.testing.assert_array_equal(got.pair_columns[key], values, key)


def test_warm_query_uses_the_candidates_and_a_mask_change_rebuilds_them() -> None:
    cols, segs = stream(3, 4000)
    cols["prompt"] = (cols["E"] > 0.7) & ~cols["muon"]
    cols["delayed"] = (cols["E"] > 4) & (cols["E"] < 6) & ~cols["muon"]
    ro = frozen(cols)
    spec = Spec(
        vetoes=(Veto.detector("mu", "muon", 2 * MS),),
        coincidence=Coincidence(
            "prompt", "delayed", MS, 0, None, "all", offtime=OffTime(5, 9 * MS)
        ),
    )
    memo = VetoMemo()
    parts = plan_partitions(ro["t"], halo_before_ns=spec.halo()[0], halo_after_ns=spec.halo()[1])
    run_partitions(ro, parts, spec, segs, memo=memo)
    phases = memo.phases(ro, spec, segs)
    assert phases is not None and len(phases) == 1
    (vp,) = phases.values()
    assert isinstance(vp, VetoPhase) and len(vp.candidates) == 1
    (cand,) = vp.candidates.values()
    keep = (ro["prompt"] | ro["delayed"]) & (vp.bits == 0)
    np.testing.assert_array_equal(cand.idx, np.flatnonzero(keep))
    assert 0 < cand.idx.size < ro["t"].size  # fewer events scanned
    # a new delayed mask (another energy window): new candidates, and the same pairs
    ro2 = dict(ro, delayed=frozen({"d": (cols["E"] > 2) & (cols["E"] < 3)})["d"])
    warm = correlate(ro2, spec, segs, veto_memo=memo)
    full = correlate({k: v.copy() for k, v in ro2.items()}, spec, segs)
    np.testing.assert_array_equal(warm.prompt, full.prompt)
    np.testing.assert_array_equal(warm.off_delayed, full.off_delayed)
    assert warm.prompt.size > 0 and len(vp.candidates) == 2
    # isolation reads events that are no candidates: the full stream is used
    iso = Spec(
        vetoes=spec.vetoes,
        coincidence=Coincidence(
            "prompt", "delayed", MS, 0, None, "all", (Isolation("muon", MS, MS),)
        ),
    )
    a = correlate(ro, iso, segs, veto_memo=memo)
    b = correlate(cols, iso, segs)
    np.testing.assert_array_equal(a.delayed, b.delayed)
