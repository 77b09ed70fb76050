"""Burrow-style lag evaluator (pure): each rule, their precedence, thresholds, the window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaas.errors import ConfigError
from jaas.kup.lag import (
    LagStatus,
    LagThresholds,
    Observation,
    PartitionWindow,
    evaluate,
    group_status,
    severity_of,
)


def win(*triples: tuple[int, int | None, float]) -> list[Observation]:
    return [Observation(o, lag, t) for o, lag, t in triples]


# offsets advancing and lag dropping, one observation per second
HEALTHY = win((10, 50, 0), (20, 45, 1), (30, 48, 2), (40, 41, 3), (50, 30, 4))


def test_empty_window_is_ok_and_incomplete():
    ev = evaluate([], 5.0, current_lag=7)
    assert ev.status is LagStatus.OK
    assert ev.lag == 7
    assert not ev.complete


def test_consuming_with_lag_dropping_is_ok():
    ev = evaluate(HEALTHY, 4.5, size=5)
    assert ev.status is LagStatus.OK
    assert ev.lag == 30
    assert ev.complete


def test_rule1_zero_lag_in_window_is_ok_even_if_offsets_stuck_since():
    w = win((10, 0, 0), (10, 3, 1), (10, 6, 2), (10, 9, 3))
    assert evaluate(w, 3.5).status is LagStatus.OK


def test_current_lag_zero_is_never_an_error():
    w = win((10, 5, 0), (10, 5, 1))
    assert evaluate(w, 100.0, current_lag=0).status is LagStatus.OK


def test_rule2_offset_stuck_with_lag_is_stall():
    w = win((10, 5, 0), (10, 7, 1), (10, 9, 2))
    ev = evaluate(w, 2.5)
    assert ev.status is LagStatus.STALL
    assert "stuck at 10" in ev.reason


def test_rule2_offset_stuck_with_constant_lag_is_stall():
    w = win((10, 5, 0), (10, 5, 1), (10, 5, 2))
    assert evaluate(w, 2.0).status is LagStatus.STALL


def test_rule3_consuming_but_lag_growing_is_warn():
    w = win((10, 5, 0), (12, 6, 1), (14, 9, 2), (16, 9, 3))
    ev = evaluate(w, 3.5)
    assert ev.status is LagStatus.WARN
    assert "5 -> 9" in ev.reason


def test_rule3_consuming_with_constant_lag_is_warn():
    w = win((10, 5, 0), (12, 5, 1), (14, 5, 2))
    assert evaluate(w, 2.0).status is LagStatus.WARN


def test_one_drop_of_lag_in_the_window_is_ok():
    w = win((10, 5, 0), (12, 8, 1), (14, 7, 2), (16, 9, 3))
    assert evaluate(w, 3.0).status is LagStatus.OK


def test_rule4_no_commit_for_longer_than_the_window_is_stop():
    ev = evaluate(HEALTHY, 4.0 + 4.01)  # window spans 4 s; last commit 4.01 s ago
    assert ev.status is LagStatus.STOP
    assert "no commit for 4.0 s" in ev.reason


def test_rule4_boundary_equal_time_is_not_stop():
    assert evaluate(HEALTHY, 8.0).status is LagStatus.OK


def test_stop_is_checked_before_the_zero_lag_rule():
    w = win((10, 0, 0), (11, 2, 1))
    assert evaluate(w, 10.0, current_lag=4).status is LagStatus.STOP


def test_stop_with_a_single_observation():
    assert evaluate(win((3, 4, 0)), 1.0).status is LagStatus.STOP
    assert evaluate(win((3, 4, 0)), 0.0).status is LagStatus.OK


def test_rewind_when_offset_goes_backwards():
    w = win((10, 5, 0), (20, 6, 1), (15, 11, 2), (18, 8, 3))
    ev = evaluate(w, 3.0)
    assert ev.status is LagStatus.REWIND
    assert "backwards" in ev.reason


def test_rule5_unknown_lag_counts_as_zero():
    w = win((10, None, 0), (10, 5, 1), (10, 5, 2))
    assert evaluate(w, 2.0).status is LagStatus.OK
    assert evaluate(win((10, -1, 0), (10, -1, 1)), 1.0).lag == 0


def test_current_lag_overrides_the_last_observation():
    ev = evaluate(win((10, 5, 0), (10, 5, 1)), 1.0, current_lag=12)
    assert ev.lag == 12
    assert ev.status is LagStatus.STALL


@pytest.mark.parametrize(
    ("lag", "expected"),
    [(30, LagStatus.OK), (100, LagStatus.WARN), (999, LagStatus.WARN), (1000, LagStatus.ERR)],
)
def test_numeric_thresholds_escalate_an_ok_partition(lag, expected):
    th = LagThresholds(warn=100, error=1000)
    ev = evaluate(HEALTHY, 4.5, current_lag=lag, thresholds=th)
    assert ev.status is expected
    if expected is not LagStatus.OK:
        assert "threshold" in ev.reason


def test_error_threshold_escalates_a_warn_but_does_not_hide_a_stall():
    th = LagThresholds(warn=1, error=6)
    growing = win((10, 5, 0), (12, 6, 1), (14, 7, 2))
    assert evaluate(growing, 2.0, thresholds=th).status is LagStatus.ERR
    stalled = win((10, 7, 0), (10, 8, 1))
    assert evaluate(stalled, 1.0, thresholds=th).status is LagStatus.STALL


def test_thresholds_do_not_fire_when_lag_is_zero():
    th = LagThresholds(warn=1)
    assert evaluate(HEALTHY, 4.5, current_lag=0, thresholds=th).status is LagStatus.OK


@pytest.mark.parametrize(("warn", "error"), [(0, None), (None, -3), (10, 5)])
def test_bad_thresholds_are_refused(warn, error):
    with pytest.raises(ConfigError, match="lag threshold"):
        LagThresholds(warn=warn, error=error)


def test_group_status_is_the_worst_partition():
    assert group_status([]) is LagStatus.OK
    assert group_status([LagStatus.OK, LagStatus.OK]) is LagStatus.OK
    assert group_status([LagStatus.OK, LagStatus.WARN]) is LagStatus.WARN
    for bad in (LagStatus.STALL, LagStatus.STOP, LagStatus.REWIND, LagStatus.ERR):
        assert group_status([LagStatus.WARN, bad, LagStatus.OK]) is LagStatus.ERR
        assert severity_of(bad) == 2


def test_partition_window_keeps_the_last_n_and_ignores_older_timestamps():
    w = PartitionWindow(size=3)
    for i in range(5):
        w.add(10 * i, 5, float(i))
    w.add(999, 1, 2.5)  # older than the last commit: clock skew, ignored
    assert [o.offset for o in w.observations] == [20, 30, 40]
    ev = w.evaluate(4.5)
    assert ev.complete
    assert ev.status is LagStatus.WARN  # offsets moving, lag constant at 5


def test_partition_window_transitions_ok_stall_stop_ok():
    w = PartitionWindow(size=4)
    for t, (off, lag) in enumerate([(0, 8), (2, 6), (4, 4), (6, 2)]):
        w.add(off, lag, float(t))
    assert w.evaluate(3.0).status is LagStatus.OK
    for t in (4, 5, 6, 7):  # consumer alive, re-committing the same offset, lag grows
        w.add(6, 2 + t, float(t))
    assert w.evaluate(7.0).status is LagStatus.STALL
    assert w.evaluate(11.5).status is LagStatus.STOP  # no commit for 4.5 s > 3 s span
    w.add(20, 0, 12.0)
    assert w.evaluate(12.0).status is LagStatus.OK


def test_partition_window_size_must_be_at_least_two():
    with pytest.raises(ConfigError, match="at least 2"):
        PartitionWindow(size=1)


observations = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(0, 1000), st.floats(0, 100)),
    min_size=1,
    max_size=12,
).map(lambda xs: [Observation(o, lag, t) for o, lag, t in sorted(xs, key=lambda x: x[2])])


@given(observations, st.floats(0, 300))
def test_property_no_current_lag_means_ok(window, dt_after):
    now = window[-1].timestamp + dt_after
    assert evaluate(window, now, current_lag=0).status is LagStatus.OK


@given(st.integers(2, 12), st.integers(1, 50), st.integers(1, 50))
def test_property_steady_progress_with_falling_lag_is_ok(n, step, drop):
    window = [Observation(i * step, drop * (n - i) + 1, float(i)) for i in range(n)]
    assert evaluate(window, float(n - 1)).status is LagStatus.OK


@given(observations, st.floats(0, 300))
def test_property_stop_exactly_when_idle_longer_than_the_window_with_lag(window, dt_after):
    now = window[-1].timestamp + dt_after
    ev = evaluate(window, now)
    idle = now - window[-1].timestamp > window[-1].timestamp - window[0].timestamp
    assert (ev.status is LagStatus.STOP) == (idle and window[-1].lag > 0)
    assert ev.lag == window[-1].lag
