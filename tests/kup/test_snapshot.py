"""The pure monitoring core: lag tracking and rates from plain numbers (no ledger, no bus)."""

from __future__ import annotations

import pytest

from jaas.kup.lag import LagStatus
from jaas.kup.snapshot import LagTracker, StageSnapshot


def stage(running: int = 0) -> StageSnapshot:
    return StageSnapshot("a", "t.a", "g.a", 60.0, {"running": running} if running else {})


def test_tracker_lag_rates_and_broker_restart():
    tr = LagTracker(window=3, rate_window=60.0)
    t = 0.0
    for committed in (0, 2, 4):  # steady progress
        st = stage()
        tr.observe(st, {0: (0, 10)}, {0: committed}, True, t)
        tr.rates([st], t)
        t += 10
    assert (st.produced, st.consumed, st.lag, st.lag_status) == (10, 4, 6, LagStatus.OK)
    assert st.consumed_per_s == pytest.approx(0.2) and st.produced_per_s == 0.0
    for _ in range(3):  # alive, stuck with lag: STALL; busy stage: only WARN
        st, busy = stage(), stage(running=1)
        tr.observe(st, {0: (0, 10)}, {0: 4}, True, t)
        t += 10
    assert st.partitions[0].status is LagStatus.STALL
    tr2 = LagTracker(window=3)
    for i in range(4):
        busy = stage(running=1)
        tr2.observe(busy, {0: (0, 10)}, {0: 4}, True, float(i))
    assert busy.partitions[0].status is LagStatus.WARN
    assert "stage busy" in busy.partitions[0].reason
    st = stage()  # the broker restarted: the watermark fell, the window starts over
    tr.observe(st, {0: (0, 1)}, {}, True, t)
    assert (st.lag, st.partitions[0].status) == (1, LagStatus.OK)
    st = stage()  # nobody ever committed: the low watermark counts as consumed
    LagTracker().observe(st, {0: (5, 9)}, {}, False, 0.0)
    assert (st.consumed, st.lag) == (5, 4)
