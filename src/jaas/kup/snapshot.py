"""The pure core of monitoring: snapshot types and lag tracking (no I/O).

A :class:`LagTracker` keeps, per partition, a Burrow window of observations
(:mod:`jaas.kup.lag`). An observation is recorded at each collection while the group has
live members (a live consumer re-commits, as in Burrow) or when the committed offset
moved; a group with no members adds none, so its partitions go STOP. The driver
(:mod:`jaas.kup.monitor`) reads the ledger and the bus and feeds the tracker; the alert
rules (:func:`jaas.kup.alerts.evaluate_rules`) read the snapshots.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from jaas.kup.bus import BrokerState
from jaas.kup.lag import LagStatus, LagThresholds, PartitionWindow, group_status

__all__ = ["BrokerState", "LagTracker", "PartitionLag", "Snapshot", "StageSnapshot"]

_RUNNING = "running"


@dataclass(frozen=True)
class PartitionLag:
    """Lag of one partition for one group: committed offset, high watermark, Burrow status."""

    group: str
    topic: str
    partition: int
    committed: int | None
    high: int
    lag: int
    status: LagStatus
    reason: str


@dataclass
class StageSnapshot:
    """One stage at one time: job counts, throughput, failures, lag of its consumer group."""

    stage: str
    topic: str
    group: str
    timeout: float
    counts: dict[str, int]
    done_window: int = 0
    files_per_min: float = 0.0
    attempts_window: int = 0
    failures_window: int = 0
    last_failure: str | None = None
    running_ages: list[float] = field(default_factory=list)
    oldest_queued: float | None = None
    since_last_start: float | None = None
    produced: int | None = None
    consumed: int | None = None
    produced_per_s: float | None = None
    consumed_per_s: float | None = None
    lag: int | None = None
    lag_status: LagStatus = LagStatus.OK
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def failure_rate(self) -> float | None:
        """Failed share of the attempts that ended in the failure window (None: none ended)."""
        return self.failures_window / self.attempts_window if self.attempts_window else None


@dataclass
class Snapshot:
    """Everything :class:`Monitor` saw at time ``at`` (Unix seconds)."""

    at: float
    broker: BrokerState
    stages: list[StageSnapshot]

    def stage(self, name: str) -> StageSnapshot:
        """The snapshot of stage ``name`` (KeyError if unknown)."""
        for s in self.stages:
            if s.stage == name:
                return s
        raise KeyError(name)


class LagTracker:
    """Burrow windows per (group, topic, partition) and topic totals for message rates.

    Args:
        window: observations per partition window.
        thresholds: optional numeric lag thresholds.
        rate_window: s over which topic message rates are computed.
        busy_is_progress: a STALL while the stage has attempts running is reported as WARN.
    """

    def __init__(
        self,
        window: int = 10,
        thresholds: LagThresholds | None = None,
        rate_window: float = 60.0,
        busy_is_progress: bool = True,
    ) -> None:
        self.window = window
        self.thresholds = thresholds
        self.rate_window = rate_window
        self.busy_is_progress = busy_is_progress
        self._windows: dict[tuple[str, str, int], PartitionWindow] = {}
        self._last: dict[tuple[str, str, int], tuple[int | None, int]] = {}
        self._totals: deque[tuple[float, dict[str, tuple[int, int]]]] = deque(maxlen=10000)
        self._pending: dict[str, tuple[int, int]] = {}

    def observe(
        self,
        st: StageSnapshot,
        marks: dict[int, tuple[int, int]],
        committed: dict[int, int | None],
        alive: bool,
        now: float,
    ) -> None:
        """Fill the lag fields of ``st`` from watermarks, committed offsets and liveness."""
        busy = self.busy_is_progress and st.counts.get(_RUNNING, 0) > 0
        parts = [
            self.partition(st.group, st.topic, p, lh, committed.get(p), alive, busy, now)
            for p, lh in sorted(marks.items())
        ]
        st.partitions = parts
        st.produced = sum(h for _, h in marks.values())
        st.consumed = sum(
            (committed.get(p) if committed.get(p) is not None else low) or 0
            for p, (low, _) in marks.items()
        )
        st.lag = sum(p.lag for p in parts)
        st.lag_status = group_status(p.status for p in parts)
        self._pending[st.topic] = (st.produced, st.consumed)

    def partition(
        self,
        group: str,
        topic: str,
        partition: int,
        low_high: tuple[int, int],
        committed: int | None,
        alive: bool,
        busy: bool,
        now: float,
    ) -> PartitionLag:
        """Record one observation of a partition (if it counts) and evaluate its window."""
        low, high = low_high
        offset = low if committed is None else committed
        lag = max(high - offset, 0)
        key = (group, topic, partition)
        win = self._windows.get(key)
        prev = self._last.get(key)
        if win is None or (prev is not None and high < prev[1]):  # new, or the broker restarted
            win = self._windows[key] = PartitionWindow(self.window)
            prev = None
        if prev is None or alive or committed != prev[0]:
            win.add(offset, lag, now)
        self._last[key] = (committed, high)
        ev = win.evaluate(now, current_lag=lag, thresholds=self.thresholds)
        status, reason = ev.status, ev.reason
        if status is LagStatus.STALL and busy:
            status, reason = LagStatus.WARN, f"{reason}; attempts are running (stage busy)"
        return PartitionLag(group, topic, partition, committed, high, lag, status, reason)

    def rates(self, stages: Sequence[StageSnapshot], now: float) -> None:
        """Close one collection: set produced/consumed messages per second of every stage."""
        self._totals.append((now, self._pending))
        self._pending = {}
        for st in stages:
            st.produced_per_s, st.consumed_per_s = self._rate(st.topic, now)

    def _rate(self, topic: str, now: float) -> tuple[float | None, float | None]:
        base = next(
            (
                (t, tot[topic])
                for t, tot in self._totals
                if topic in tot and t >= now - self.rate_window
            ),
            None,
        )
        cur = self._totals[-1][1].get(topic) if self._totals else None
        if base is None or cur is None or now - base[0] <= 0:
            return None, None
        span = now - base[0]
        return (cur[0] - base[1][0]) / span, (cur[1] - base[1][1]) / span
