"""Hand-built tiny streams, one per semantic edge of the correlation operators."""

from __future__ import annotations

import numpy as np
import pytest

from jaas.engine.core.correlate import (
    Coincidence,
    Isolation,
    OffTime,
    SinceLast,
    Spec,
    Veto,
    correlate,
    standard_ibd,
)
from jaas.errors import ConfigError

SEG = np.array([[0, 100_000]], np.int64)


def stream(t: list[int], **masks: list[int]) -> dict[str, np.ndarray]:
    """Columns with times ``t`` and masks given as lists of True indices."""
    n = len(t)
    cols: dict[str, np.ndarray] = {"t": np.array(t, np.int64)}
    for c in ("x", "y", "z"):
        cols[c] = np.zeros(n, np.float32)
    for c in ("mx0", "my0", "mz0", "mx1", "my1", "mz1"):
        cols[c] = np.full(n, np.nan, np.float32)
    for name in ("prompt", "delayed", "muon"):
        cols[name] = np.zeros(n, bool)
    for name, idx in masks.items():
        cols[name] = np.zeros(n, bool)
        cols[name][idx] = True
    return cols


def pairs(cols: dict[str, np.ndarray], spec: Spec, segs: np.ndarray = SEG) -> list[tuple[int, int]]:
    r = correlate(cols, spec, segs)
    return list(zip(r.prompt.tolist(), r.delayed.tolist(), strict=True))


def coinc(**kw: object) -> Spec:
    return Spec(coincidence=Coincidence("prompt", "delayed", **kw))  # type: ignore[arg-type]


def test_dt_strict_at_zero_and_at_dt_max() -> None:
    # prompt at 10_000; delayed at +0 (same time), +1, +999, +1000
    cols = stream([10_000, 10_000, 10_001, 10_999, 11_000], prompt=[0], delayed=[1, 2, 3, 4])
    assert pairs(cols, coinc(dt_max_ns=1000, mode="all")) == [(0, 2), (0, 3)]
    # dt_min is strict too
    assert pairs(cols, coinc(dt_max_ns=1000, dt_min_ns=1, mode="all")) == [(0, 3)]


def test_multiplicity_modes_with_two_prompts() -> None:
    cols = stream([10_000, 10_300, 10_500], prompt=[0, 1], delayed=[2])
    assert pairs(cols, coinc(dt_max_ns=1000, mode="all")) == [(0, 2), (1, 2)]
    assert pairs(cols, coinc(dt_max_ns=1000, mode="nearest")) == [(1, 2)]
    assert pairs(cols, coinc(dt_max_ns=1000, mode="exactly_one")) == []
    # the dr cut removes the far prompt, so exactly one candidate remains
    cols["x"][:] = [5.0, 0.0, 0.0]
    assert pairs(cols, coinc(dt_max_ns=1000, dr_max=1.5, mode="exactly_one")) == [(1, 2)]


def test_nearest_tie_takes_later_event_in_stream_order() -> None:
    cols = stream([10_000, 10_000, 10_500], prompt=[0, 1], delayed=[2])
    assert pairs(cols, coinc(dt_max_ns=1000, mode="nearest")) == [(1, 2)]


def test_detector_veto_boundaries_and_ties() -> None:
    # event 0 has the muon's time but precedes it in the stream: still vetoed
    cols = stream([5_000, 5_000, 5_100, 6_499, 6_500], muon=[1])
    r = correlate(cols, Spec(vetoes=(Veto.detector("mu", "muon", 1500),), gap_veto=False), SEG)
    assert r.vetoed.tolist() == [True, True, True, True, False]
    assert r.vetoed_by("mu").tolist() == r.vetoed.tolist()
    assert not r.vetoed_by("gap").any()
    np.testing.assert_array_equal(r.veto_intervals, [[5_000, 6_500]])


def test_vetoed_prompt_and_delayed_are_not_candidates() -> None:
    cols = stream([10_000, 10_200, 10_400, 30_000, 30_500], muon=[0], prompt=[1, 3], delayed=[2, 4])
    spec = Spec(
        vetoes=(Veto.detector("mu", "muon", 300),), coincidence=coinc(dt_max_ns=1000).coincidence
    )
    # prompt 1 is vetoed (200 ns after the muon): delayed 2 has no partner
    assert pairs(cols, spec) == [(3, 4)]


def test_gap_veto_after_each_segment_start() -> None:
    segs = np.array([[0, 10_000], [20_000, 30_000]], np.int64)
    cols = stream([100, 1_600, 20_500, 21_499, 21_500])
    spec = Spec(vetoes=(Veto.detector("mu", "muon", 1500),))
    r = correlate(cols, spec, segs)
    assert r.vetoed_by("gap").tolist() == [True, False, True, True, False]
    assert r.exposure.gap_veto_ns == 3000
    off = correlate(cols, Spec(vetoes=spec.vetoes, gap_veto=False), segs)
    assert not off.vetoed.any()
    assert off.exposure.livetime_ns == 20_000


def test_cylinder_veto_uses_infinite_line_and_ignores_untracked() -> None:
    cols = stream([1_000, 1_100, 1_200, 1_300, 50_000, 50_100], muon=[0, 4])
    cols["mx0"][0], cols["my0"][0], cols["mz0"][0] = 0, 0, -1  # track along z
    cols["mx1"][0], cols["my1"][0], cols["mz1"][0] = 0, 0, 1
    cols["x"][1:4] = [2.9, 3.1, 0.0]
    cols["z"][1:4] = [40.0, 0.0, -90.0]  # beyond the entry/exit points: still on the line
    cols["x"][5] = 0.1  # next to the untracked muon 4: not vetoed by the cylinder
    r = correlate(cols, Spec(vetoes=(Veto.cylinder("cyl", "muon", 10_000, 3.0),)), SEG)
    assert r.vetoed_by("cyl").tolist() == [False, True, False, True, False, False]


def test_sphere_veto_excludes_its_trigger() -> None:
    cols = stream([1_000, 1_500, 1_600, 9_000], nlike=[0])
    cols["x"][:] = [1.0, 1.5, 2.2, 1.0]
    r = correlate(cols, Spec(vetoes=(Veto.sphere("n", "nlike", 5_000, 1.0),)), SEG)
    assert r.vetoed.tolist() == [False, True, False, False]


def test_pair_across_a_gap_is_rejected() -> None:
    segs = np.array([[0, 10_000], [10_100, 30_000]], np.int64)
    cols = stream([9_900, 11_300, 12_000, 12_400], prompt=[0, 2], delayed=[1, 3])
    assert pairs(cols, coinc(dt_max_ns=1_500, mode="all"), segs) == [(2, 3)]
    # delayed 1's window [9_800, 11_300] starts before its segment: no pair at all
    cols2 = stream([10_200, 10_900], prompt=[0], delayed=[1])
    assert pairs(cols2, coinc(dt_max_ns=1_000, mode="all"), segs) == []


def test_isolation_after_delayed_and_before_prompt() -> None:
    cols = stream([10_000, 10_500, 11_200], prompt=[0], delayed=[1, 2])
    iso_after = Isolation("delayed", 0, 1_000)
    spec = coinc(dt_max_ns=1000, mode="all", isolation=(iso_after,))
    assert pairs(cols, spec) == []  # delayed 2 is 700 ns after delayed 1
    spec = coinc(dt_max_ns=1000, mode="all", isolation=(Isolation("delayed", 0, 600),))
    assert pairs(cols, spec) == [(0, 1)]
    # a muon-like event 200 ns before the prompt breaks a 500 ns "before" isolation
    cols3 = stream([9_800, 10_000, 10_500], prompt=[1], delayed=[2], muon=[0])
    spec = coinc(dt_max_ns=1000, mode="all", isolation=(Isolation("muon", 500, 0),))
    assert pairs(cols3, spec) == []


def test_offtime_windows_count_shifted_prompts() -> None:
    s = 1_000_000_000
    # delayed at 3 s; prompts 1 s + 500 ns and 1 s + 1000 ns + 300 ns before it
    t = [2 * s - 1_300, 2 * s - 500, 3 * s]
    cols = stream(sorted(t), prompt=[0, 1], delayed=[2])
    spec = coinc(dt_max_ns=1000, mode="exactly_one", offtime=OffTime(n=3, start_ns=s))
    r = correlate(cols, spec, np.array([[0, 4 * s]]))
    assert r.prompt.size == 0
    got = sorted(zip(r.off_prompt.tolist(), r.off_window.tolist(), strict=True))
    assert got == [(0, 1), (1, 0)]  # window k=1 (index 0) and k=2 (index 1)
    assert r.accidentals is not None
    assert r.accidentals.estimate == pytest.approx(2 / 3)
    assert r.accidentals.error == pytest.approx(np.sqrt(2) / 3)


def test_time_since_last_muon_and_track_distance() -> None:
    cols = stream([1_000, 2_000, 3_000, 50_000], muon=[0])
    cols["mx0"][0], cols["my0"][0], cols["mz0"][0] = 0, 0, 0
    cols["mx1"][0], cols["my1"][0], cols["mz1"][0] = 1, 0, 0  # along x
    cols["y"][1:] = [2.0, 0.5, 1.0]
    r = correlate(cols, Spec(since=(SinceLast("tmu", "muon", 10_000),)), SEG)
    np.testing.assert_array_equal(r.columns["tmu"], [np.inf, 1000.0, 2000.0, np.inf])
    np.testing.assert_allclose(r.columns["tmu_dist"], [np.nan, 2.0, 0.5, np.nan])


def test_standard_ibd_spec_and_errors() -> None:
    spec = standard_ibd()
    cols = stream([1_000, 1_300], prompt=[0], delayed=[1])
    with pytest.raises(ConfigError, match=r"lacks columns \['muon'\]"):
        correlate({k: v for k, v in cols.items() if k != "muon"}, spec)
    bad = dict(cols, t=np.array([5, 3], np.int64))
    with pytest.raises(ConfigError, match=r"entry 1 .* precedes entry 0"):
        correlate(bad, spec)
    with pytest.raises(ConfigError, match="mode 'first'"):
        correlate(cols, coinc(dt_max_ns=10, mode="first"))
    with pytest.raises(ConfigError, match="start_ns >= dt_max_ns"):
        correlate(cols, coinc(dt_max_ns=10, offtime=OffTime(start_ns=5)))
    with pytest.raises(ConfigError, match=r"segments\[0\]"):
        correlate(cols, spec, [[10, 5]])
