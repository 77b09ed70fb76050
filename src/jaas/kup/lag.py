"""Burrow-style consumer-lag evaluation (pure): a window of offset observations -> a status.

Burrow's rules (github.com/linkedin/Burrow/wiki/Consumer-Lag-Evaluation-Rules,
``evaluator_caching.go``), applied per partition to the last N observations
``(committed offset, lag, timestamp)``, oldest first:

1. a lag of zero anywhere in the window (or now) means OK;
2. the committed offset does not move over the window while lag > 0: STALL;
3. offsets move but the lag never drops over the window: WARN (falling behind);
4. the time since the last observation exceeds the time the window spans, with lag > 0:
   STOP (the consumer no longer commits); checked first, it overrides the others;
5. a lag of ``None`` (no broker offset yet, Burrow's -1) counts as zero.

Burrow also reports REWIND when a committed offset goes backwards inside the window.
Optional numeric thresholds (asked for in Burrow #425, #665) escalate an otherwise OK or
WARN partition to WARN or ERR when the current lag reaches them. The group status is the
worst of its partitions (OK < WARN < ERR, STALL/STOP/REWIND count as ERR).
"""

from __future__ import annotations

import enum
import itertools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jaas.errors import ConfigError

__all__ = [
    "LagStatus",
    "LagThresholds",
    "Observation",
    "PartitionEval",
    "PartitionWindow",
    "evaluate",
    "group_status",
    "severity_of",
]


class LagStatus(enum.StrEnum):
    """Status of one partition (Burrow's names) or of a group (OK / WARN / ERR)."""

    OK = "OK"
    WARN = "WARN"
    ERR = "ERR"
    STALL = "STALL"
    STOP = "STOP"
    REWIND = "REWIND"


_RANK = {
    LagStatus.OK: 0,
    LagStatus.WARN: 1,
    LagStatus.ERR: 2,
    LagStatus.STALL: 2,
    LagStatus.STOP: 2,
    LagStatus.REWIND: 2,
}


def severity_of(status: LagStatus) -> int:
    """0 for OK, 1 for WARN, 2 for ERR, STALL, STOP and REWIND."""
    return _RANK[status]


@dataclass(frozen=True)
class Observation:
    """One committed offset seen for a partition: offset, lag (None: unknown) and time (s)."""

    offset: int
    lag: int | None
    timestamp: float


@dataclass(frozen=True)
class LagThresholds:
    """Numeric lag thresholds (messages) on top of Burrow's rules; None disables one."""

    warn: int | None = None
    error: int | None = None

    def __post_init__(self) -> None:
        for name, v in (("warn", self.warn), ("error", self.error)):
            if v is not None and v < 1:
                raise ConfigError(f"lag threshold {name}={v}: expected a positive message count")
        if self.warn is not None and self.error is not None and self.warn > self.error:
            raise ConfigError(
                f"lag thresholds: warn={self.warn} is above error={self.error}; "
                "expected warn <= error"
            )


@dataclass(frozen=True)
class PartitionEval:
    """Result for one partition: status, current lag, and whether the window was full."""

    status: LagStatus
    lag: int
    complete: bool
    reason: str


def _lag(o: Observation) -> int:
    return 0 if o.lag is None or o.lag < 0 else o.lag  # rule 5


def evaluate(
    window: Sequence[Observation],
    now: float,
    *,
    current_lag: int | None = None,
    size: int | None = None,
    thresholds: LagThresholds | None = None,
) -> PartitionEval:
    """Evaluate one partition's window of observations (oldest first) at time ``now``.

    Args:
        window: observations, oldest first.
        now: current time (same clock as the timestamps).
        current_lag: lag now (default: the last observation's).
        size: the window's intended length (for ``complete``; default: ``len(window)``).
        thresholds: optional numeric thresholds.

    Example:
        >>> w = [Observation(10, 5, 0.0), Observation(10, 7, 1.0), Observation(10, 9, 2.0)]
        >>> evaluate(w, 2.5).status
        <LagStatus.STALL: 'STALL'>
    """
    if not window:
        lag = 0 if current_lag is None else max(current_lag, 0)
        return _with_thresholds(PartitionEval(LagStatus.OK, lag, False, "no commits"), thresholds)
    lag_now = _lag(window[-1]) if current_lag is None else max(current_lag, 0)
    complete = len(window) >= (size or len(window))
    res = _burrow(window, now, lag_now)
    return _with_thresholds(PartitionEval(res[0], lag_now, complete, res[1]), thresholds)


def _burrow(window: Sequence[Observation], now: float, lag_now: int) -> tuple[LagStatus, str]:
    if lag_now == 0:
        return LagStatus.OK, "caught up"
    first, last = window[0], window[-1]
    if now - last.timestamp > last.timestamp - first.timestamp:
        return LagStatus.STOP, (
            f"no commit for {now - last.timestamp:.1f} s (window spans "
            f"{last.timestamp - first.timestamp:.1f} s), lag {lag_now}"
        )
    if any(_lag(o) == 0 for o in window):
        return LagStatus.OK, "lag was zero within the window"
    if len(window) < 2:
        return LagStatus.OK, "one observation: not enough to judge"
    if any(b.offset < a.offset for a, b in itertools.pairwise(window)):
        return LagStatus.REWIND, "committed offset went backwards"
    if all(o.offset == first.offset for o in window):
        return LagStatus.STALL, f"offset stuck at {first.offset} with lag {lag_now}"
    if all(_lag(b) >= _lag(a) for a, b in itertools.pairwise(window)):
        return LagStatus.WARN, f"consuming but lag never dropped ({_lag(first)} -> {lag_now})"
    return LagStatus.OK, "consuming, lag dropping"


def _with_thresholds(ev: PartitionEval, th: LagThresholds | None) -> PartitionEval:
    if th is None or severity_of(ev.status) >= 2:
        return ev
    if th.error is not None and ev.lag >= th.error:
        return PartitionEval(
            LagStatus.ERR, ev.lag, ev.complete, f"lag {ev.lag} >= error threshold {th.error}"
        )
    if ev.status is LagStatus.OK and th.warn is not None and ev.lag >= th.warn:
        return PartitionEval(
            LagStatus.WARN, ev.lag, ev.complete, f"lag {ev.lag} >= warn threshold {th.warn}"
        )
    return ev


def group_status(statuses: Iterable[LagStatus]) -> LagStatus:
    """Burrow's group status: ERR if any partition is ERR/STALL/STOP/REWIND, WARN if any WARN."""
    worst = max((severity_of(s) for s in statuses), default=0)
    return (LagStatus.OK, LagStatus.WARN, LagStatus.ERR)[worst]


class PartitionWindow:
    """Sliding window of the last ``size`` observations of one partition (Burrow's ring).

    Args:
        size: number of observations kept (Burrow's ``intervals``, default 10).
    """

    def __init__(self, size: int = 10) -> None:
        if size < 2:
            raise ConfigError(f"lag window size {size}: expected at least 2 observations")
        self.size = size
        self._obs: deque[Observation] = deque(maxlen=size)

    def add(self, offset: int, lag: int | None, timestamp: float) -> None:
        """Record a commit; an older timestamp than the last one is ignored (clock skew)."""
        if self._obs and timestamp < self._obs[-1].timestamp:
            return
        self._obs.append(Observation(offset, lag, timestamp))

    @property
    def observations(self) -> list[Observation]:
        """The window, oldest first."""
        return list(self._obs)

    def evaluate(
        self, now: float, current_lag: int | None = None, thresholds: LagThresholds | None = None
    ) -> PartitionEval:
        """:func:`evaluate` on this window."""
        return evaluate(
            self.observations, now, current_lag=current_lag, size=self.size, thresholds=thresholds
        )
