"""Alert rules over monitoring snapshots: pure functions and types, no I/O.

Rules (each configurable in :class:`AlertRules`):

- ``failure_rate``: share of a stage's attempts that failed among those that ended in the
  last ``failure_window`` s (warning / critical above two thresholds, once at least
  ``min_attempts`` ended);
- ``stuck_running``: attempts running longer than the stage timeout x ``stuck_factor``
  (the lease should have ended them: a worker or the relay is not doing its job);
- ``stuck_queued``: jobs queued for ``queued_stall`` s while no attempt of the stage started;
- ``lag``: the stage's consumer group lag status (Burrow): WARN -> warning,
  STALL / STOP / REWIND / ERR -> critical;
- ``broker_down``: the broker does not answer -> critical.

An alert is identified by ``(rule, subject)``; while active it is one row, updated in
place (de-duplicated); when its condition clears the row gets its ``resolved`` time.

A pipeline configures its monitor in the stages YAML (:class:`MonitorConfig`, key
``monitor``): the Burrow window, optional numeric lag thresholds and these rules, e.g.::

    monitor:
      window: 5            # observations per partition (x the monitor interval = the window)
      lag_warn: 100
      rules: {failure_window: 300, queued_stall: 120}
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from jaas.errors import ConfigError
from jaas.kup.lag import LagStatus, LagThresholds, severity_of

if TYPE_CHECKING:
    from jaas.kup.snapshot import Snapshot, StageSnapshot

__all__ = ["Alert", "AlertRules", "MonitorConfig", "Severity", "evaluate_rules"]


class Severity(enum.StrEnum):
    """How urgent an alert is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Alert:
    """A condition that holds now: rule, subject (stage, group or broker), severity, message."""

    rule: str
    subject: str
    severity: Severity
    message: str
    value: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        """``(rule, subject)``: what de-duplicates an alert while it is active."""
        return (self.rule, self.subject)


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the alert rules (operator defaults, not physics; change per facility)."""

    failure_window: float = 900.0  # s over which the failure rate is computed
    failure_warn: float = 0.2  # share of failed attempts
    failure_critical: float = 0.5
    min_attempts: int = 3  # attempts ended in the window before a rate is judged
    stuck_factor: float = 2.0  # running longer than timeout x this is stuck
    queued_stall: float = 600.0  # s queued with no attempt started at that stage

    def __post_init__(self) -> None:
        if not 0 < self.failure_warn <= self.failure_critical <= 1:
            raise ConfigError(
                f"alert rules: expected 0 < failure_warn ({self.failure_warn}) <= "
                f"failure_critical ({self.failure_critical}) <= 1"
            )
        for name in ("failure_window", "stuck_factor", "queued_stall"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"alert rules: {name}={getattr(self, name)}: expected > 0")
        if self.min_attempts < 1:
            raise ConfigError(f"alert rules: min_attempts={self.min_attempts}: expected >= 1")


AlertRules.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


class MonitorConfig(BaseModel):
    """The ``monitor`` section of a stages YAML: lag window and thresholds, alert rules.

    The lag rule's window in seconds is ``window`` x the monitor's interval (``jaas kup up
    --monitor-interval``): a consumer that stops committing is STOP once it has been silent
    for longer than the window spans.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(default=10, ge=2, description="observations per partition (Burrow)")
    lag_warn: int | None = Field(default=None, ge=1, description="lag (messages) -> WARN")
    lag_error: int | None = Field(default=None, ge=1, description="lag (messages) -> ERR")
    rules: AlertRules = Field(default_factory=lambda: AlertRules())

    @model_validator(mode="after")
    def _ordered(self) -> MonitorConfig:
        _ = self.thresholds  # warn <= error
        return self

    @property
    def thresholds(self) -> LagThresholds | None:
        """The numeric lag thresholds (None: Burrow's rules only)."""
        if self.lag_warn is None and self.lag_error is None:
            return None
        return LagThresholds(self.lag_warn, self.lag_error)


def evaluate_rules(snap: Snapshot, rules: AlertRules | None = None) -> list[Alert]:
    """Alerts that hold for a snapshot (pure: no I/O).

    Example:
        >>> [a.rule for a in evaluate_rules(snapshot)]     # doctest: +SKIP
        ['broker_down']
    """
    r = rules or AlertRules()
    out: list[Alert] = []
    if not snap.broker.up and snap.broker.bootstrap is not None:  # None: ledger only
        out.append(
            Alert(
                "broker_down",
                snap.broker.bootstrap or "broker",
                Severity.CRITICAL,
                f"broker {snap.broker.bootstrap} does not answer: {snap.broker.error}",
                0.0,
            )
        )
    for st in snap.stages:
        out += _stage_alerts(st, r)
    return out


def _stage_alerts(st: StageSnapshot, r: AlertRules) -> list[Alert]:
    out: list[Alert] = []
    if st.attempts_window >= r.min_attempts and st.attempts_window > 0:
        rate = st.failures_window / st.attempts_window
        sev = (
            Severity.CRITICAL
            if rate >= r.failure_critical
            else Severity.WARNING
            if rate >= r.failure_warn
            else None
        )
        if sev is not None:
            msg = (
                f"stage {st.stage}: {st.failures_window} of {st.attempts_window} attempts failed "
                f"in the last {r.failure_window:g} s ({rate:.0%})"
            )
            if st.last_failure:
                msg += f"; last: {st.last_failure}"
            out.append(Alert("failure_rate", st.stage, sev, msg, rate))
    limit = st.timeout * r.stuck_factor
    overdue = [a for a in st.running_ages if a > limit]
    if overdue:
        out.append(
            Alert(
                "stuck_running",
                st.stage,
                Severity.CRITICAL,
                f"stage {st.stage}: {len(overdue)} attempt(s) running for up to "
                f"{max(overdue):.0f} s, over {r.stuck_factor:g} x the {st.timeout:g} s timeout",
                max(overdue),
            )
        )
    queued = st.counts.get("queued", 0)
    idle = st.oldest_queued if st.since_last_start is None else st.since_last_start
    waiting = st.oldest_queued is not None and st.oldest_queued > r.queued_stall
    if queued and waiting and idle is not None and idle > r.queued_stall:
        out.append(
            Alert(
                "stuck_queued",
                st.stage,
                Severity.WARNING,
                f"stage {st.stage}: {queued} job(s) queued, no attempt started for "
                f"{idle:.1f} s (is its worker up? `jaas kup status`)",
                float(idle),
            )
        )
    status = st.lag_status
    if status is not LagStatus.OK:
        sev = Severity.WARNING if severity_of(status) == 1 else Severity.CRITICAL
        worst = next((p for p in st.partitions if p.status is status), None)
        why = f": {worst.reason}" if worst is not None else ""
        out.append(
            Alert(
                "lag",
                st.group,
                sev,
                f"consumer group {st.group} on {st.topic}: {status.value}, lag {st.lag}{why}",
                float(st.lag or 0),
            )
        )
    return out
