"""Property tests: random streams, random specs, random partitions == brute-force reference."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from tests.engine._reference import reference

MASKS = ("muon", "shower", "prompt", "delayed", "nlike")


def make_stream(seed: int, n: int, span: int = 12_000) -> dict[str, np.ndarray]:
    """Random times with clusters and ties, masks, positions, partly tracked muons."""
    rng = np.random.default_rng(seed)
    centers = rng.integers(0, span, max(1, n // 4))
    t = np.sort(
        np.concatenate(
            [
                rng.integers(0, span, n - n // 2),
                rng.choice(centers, n // 2) + rng.integers(0, 300, n // 2),
            ]
        )
    ).astype(np.int64)
    cols: dict[str, np.ndarray] = {"t": t}
    for name, p in zip(MASKS, (0.06, 0.02, 0.35, 0.4, 0.1), strict=True):
        cols[name] = rng.random(n) < p
    for c in ("x", "y", "z"):
        cols[c] = rng.uniform(-1.2, 1.2, n).astype(np.float32)
    tracked = (cols["muon"] | cols["shower"]) & (rng.random(n) < 0.7)
    for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        v = rng.uniform(-2, 2, n).astype(np.float32)
        v[~tracked] = np.nan
        cols[c] = v
    return cols


@st.composite
def specs(draw: Any) -> Spec:
    vetoes = []
    if draw(st.booleans()):
        vetoes.append(Veto.detector("mu", "muon", draw(st.integers(0, 800))))
    if draw(st.booleans()):
        vetoes.append(Veto.detector("shower", "shower", draw(st.integers(0, 2500))))
    if draw(st.booleans()):
        r = draw(st.floats(0.3, 1.5))
        vetoes.append(Veto.cylinder("cyl", "muon", draw(st.integers(0, 5000)), r))
    if draw(st.booleans()):
        r = draw(st.floats(0.3, 1.5))
        vetoes.append(Veto.sphere("sph", "nlike", draw(st.integers(0, 4000)), r))
    coinc = None
    if draw(st.integers(0, 4)) > 0 or not vetoes:
        dt_min = draw(st.sampled_from([0, 0, 10, 150]))
        dt_max = dt_min + draw(st.integers(1, 1500))
        iso = ()
        if draw(st.booleans()):
            iso = (
                Isolation(
                    draw(st.sampled_from(MASKS)),
                    draw(st.integers(0, 800)),
                    draw(st.integers(0, 800)),
                ),
            )
        off = None
        if draw(st.booleans()):
            step = draw(st.sampled_from([None, 50, 700]))
            off = OffTime(draw(st.integers(1, 4)), dt_max + draw(st.integers(0, 2000)), step)
        coinc = Coincidence(
            "prompt",
            "delayed",
            dt_max,
            dt_min,
            draw(st.sampled_from([None, 1.0, 3.0])),
            draw(st.sampled_from(["all", "nearest", "exactly_one"])),
            iso,
            off,
        )
    since: tuple[SinceLast, ...] = ()
    if draw(st.booleans()):
        since = (SinceLast("tmu", "muon", draw(st.integers(0, 8000))),)
    return Spec(tuple(vetoes), coinc, since, draw(st.booleans()), 3.0, 40, 7)


@st.composite
def segment_sets(draw: Any) -> np.ndarray | None:
    if draw(st.booleans()):
        return None
    if draw(st.booleans()):
        return np.array([[-1000, 7000], [7100, 12_000], [12_500, 30_000]], np.int64)
    cuts = sorted(draw(st.lists(st.integers(-500, 13_000), min_size=2, max_size=5, unique=True)))
    pairs = list(zip(cuts[::2], cuts[1::2], strict=False))
    return np.array(pairs, np.int64).reshape(-1, 2)


def assert_matches(res: Result, ref: dict[str, Any]) -> None:
    """Every output of ``correlate`` equals the reference."""
    np.testing.assert_array_equal(res.prompt, ref["prompt"])
    np.testing.assert_array_equal(res.delayed, ref["delayed"])
    np.testing.assert_array_equal(res.veto_bits, ref["veto_bits"])
    got_off = sorted(
        zip(res.off_prompt.tolist(), res.off_delayed.tolist(), res.off_window.tolist(), strict=True)
    )
    assert got_off == sorted(ref["off"])
    assert list(zip(res.off_delayed.tolist(), res.off_window.tolist(), strict=True)) == sorted(
        zip(res.off_delayed.tolist(), res.off_window.tolist(), strict=True)
    )
    assert set(res.columns) == set(ref["columns"])
    for name, col in ref["columns"].items():
        np.testing.assert_array_equal(res.columns[name], col)
    np.testing.assert_array_equal(res.veto_intervals, ref["veto_intervals"])
    assert res.exposure.veto_ns == ref["veto_ns"]
    assert res.exposure.gap_veto_ns == ref["gap_veto_ns"]
    assert res.exposure.mc_live == ref["mc_live"]
    assert res.exposure.mc_pass == ref["mc_pass"]
    assert res.exposure.mc_pass_by_veto == ref["mc_pass_by_veto"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.one_of(st.integers(0, 8), st.integers(30, 70)),
    spec=specs(),
    segs=segment_sets(),
    part=st.integers(1, 12),
    threads=st.integers(1, 3),
)
def test_random_streams_match_reference_at_any_partitioning(
    seed: int, n: int, spec: Spec, segs: np.ndarray | None, part: int, threads: int
) -> None:
    cols = make_stream(seed, n)
    if n == 0 and segs is None:
        segs = np.array([[0, 100]], np.int64)
    ref = reference(cols, spec, segs)
    res = correlate(cols, spec, segs, partition_events=part, threads=threads)
    assert_matches(res, ref)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spec=specs(), part_ns=st.integers(50, 3000))
def test_partition_by_time_shorter_than_halo_matches_reference(
    seed: int, spec: Spec, part_ns: int
) -> None:
    cols = make_stream(seed, 40)
    segs = np.array([[-100, 6000], [6500, 25_000]], np.int64)
    res = correlate(cols, spec, segs, partition_ns=part_ns, threads=2)
    assert_matches(res, reference(cols, spec, segs))
