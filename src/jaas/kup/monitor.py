"""Monitoring driver: reads the ledger and the bus, feeds the pure core, stores alerts and history.

A :class:`Monitor` reads the ledger through :mod:`jaas.kup.readmodels` (jobs per stage
and state, attempts that ended or started recently) and the :class:`~jaas.kup.bus.Bus`
(topics, high watermarks, committed offsets of each stage's consumer group, group
liveness), and hands them to :class:`jaas.kup.snapshot.LagTracker` (the pure core: Burrow
windows, rates). :func:`run_forever` collects every ``interval`` s, evaluates and stores
the alerts, and writes a history row per stage (table ``kup_monitor_history``) and one per
(group, partition) (table ``kup_lag_partitions``: committed offset, high watermark, lag,
Burrow status) for charts; both are pruned after ``retention_days``.

The Burrow window, lag thresholds and alert rules come from the ``monitor`` section of the
pipeline's stages YAML (:class:`jaas.kup.alert_rules.MonitorConfig`) unless given.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    delete,
    insert,
    select,
)

from jaas.db import ensure_schema
from jaas.kup.alerts import Alert, AlertRules, AlertStore, evaluate_rules
from jaas.kup.bus import BrokerState, Bus
from jaas.kup.config import KupSettings
from jaas.kup.lag import LagThresholds
from jaas.kup.ledger import Ledger, metadata
from jaas.kup.readmodels import ReadModels, StageActivity
from jaas.kup.snapshot import LagTracker, PartitionLag, Snapshot, StageSnapshot

__all__ = [
    "BrokerState",
    "Monitor",
    "PartitionLag",
    "Snapshot",
    "StageSnapshot",
    "history_table",
    "main",
    "partitions_table",
    "read_history",
    "read_partition_history",
    "run_forever",
]

log = logging.getLogger("jaas.kup.monitor")

history_table = Table(
    "kup_monitor_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("stage", String(64), nullable=False),
    Column("queued", Integer, nullable=False),
    Column("running", Integer, nullable=False),
    Column("done", Integer, nullable=False),
    Column("failed", Integer, nullable=False),  # failed + retrying + dead
    Column("files_per_min", Float, nullable=False),
    Column("failure_rate", Float),
    Column("produced", Integer),
    Column("consumed", Integer),
    Column("lag", Integer),
    Column("lag_status", String(8)),
)


partitions_table = Table(
    "kup_lag_partitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("stage", String(64), nullable=False),
    Column("group", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("committed", Integer),
    Column("high", Integer, nullable=False),
    Column("lag", Integer, nullable=False),
    Column("status", String(8), nullable=False),
    Column("reason", String(255)),
)


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _ts(t: dt.datetime | None) -> float | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


class Monitor:
    """Collects :class:`Snapshot` s of one pipeline (ledger + broker), keeping lag windows.

    Args:
        ledger: the pipeline ledger.
        bus: the message bus, or a Kafka ``host:port`` (None: ledger only, no lag or
            broker state).
        group_prefix: stage groups are ``PREFIX.STAGE`` (as the workers name them).
        window: observations per partition in the Burrow window (Burrow's default 10).
        thresholds: optional numeric lag thresholds.
        rules: alert rules (their failure window is the failure-rate window here too).
        throughput_window: s over which files/min per stage are computed.
        rate_window: s over which topic message rates are computed.
        busy_is_progress: a STALL while the stage has attempts running is reported as WARN
            (a stage busy with long attempts does not commit; it is not stuck).

    Example:
        >>> mon = Monitor(ledger, "127.0.0.1:9092")    # doctest: +SKIP
        >>> snap = mon.collect()                        # doctest: +SKIP
    """

    def __init__(
        self,
        ledger: Ledger,
        bus: Bus | str | None,
        *,
        group_prefix: str = "jaas-kup",
        window: int = 10,
        thresholds: LagThresholds | None = None,
        rules: AlertRules | None = None,
        throughput_window: float = 300.0,
        rate_window: float = 60.0,
        busy_is_progress: bool = True,
    ) -> None:
        self.ledger = ledger
        if isinstance(bus, str):
            from jaas.kup.kafka import KafkaBus

            bus = KafkaBus(bus)
        self.bus: Bus | None = bus
        self.bootstrap = None if bus is None else bus.name
        self.group_prefix = group_prefix
        self.window = window
        self.thresholds = thresholds
        self.rules = rules or AlertRules()
        self.throughput_window = throughput_window
        self.rate_window = rate_window
        self.busy_is_progress = busy_is_progress
        self.reads = ReadModels(ledger.engine, [s.name for s in ledger.config.stages])
        self.tracker = LagTracker(window, thresholds, rate_window, busy_is_progress)

    def close(self) -> None:
        """Close the broker clients (the ledger belongs to the caller)."""
        if self.bus is not None:
            self.bus.close()

    # ---- collection ------------------------------------------------------------------------

    def collect(self, now: float | None = None) -> Snapshot:
        """Read ledger and broker now; update the lag windows; return the snapshot."""
        now = time.time() if now is None else now
        stages = self._ledger_side(now)
        broker = BrokerState(self.bootstrap, up=False, error="no broker configured")
        if self.bus is not None:
            broker = self.bus.cluster()
            if broker.up:
                try:
                    self._kafka_side(stages, now)
                except Exception as exc:  # broker went away between calls
                    self.bus.reset()  # reconnect at the next collection
                    why = str(exc).strip() or f"{type(exc).__name__} (no message)"
                    broker = BrokerState(self.bootstrap, up=False, error=why)
        return Snapshot(now, broker, stages)

    def _ledger_side(self, now: float) -> list[StageSnapshot]:
        cfg = self.ledger.config
        act = self.reads.activity(
            _utc(now), _utc(now - self.rules.failure_window), _utc(now - self.throughput_window)
        )
        out = []
        for s in cfg.stages:
            a = act.get(s.name) or StageActivity(s.name)
            st = StageSnapshot(
                s.name, s.input, f"{self.group_prefix}.{s.name}", s.timeout, a.counts
            )
            st.attempts_window, st.failures_window = a.failures.ended, a.failures.failed
            st.last_failure = a.last_failure
            st.running_ages = [now - t.timestamp() for t in a.running_started]
            st.oldest_queued = (
                None if a.oldest_queued is None else now - a.oldest_queued.timestamp()
            )
            st.since_last_start = None if a.last_start is None else now - a.last_start.timestamp()
            st.done_window = a.done_since
            if a.first_start is not None:
                span = max(min(self.throughput_window, now - a.first_start.timestamp()), 1.0)
                st.files_per_min = 60.0 * st.done_window / span
            out.append(st)
        return out

    def _kafka_side(self, stages: list[StageSnapshot], now: float) -> None:
        assert self.bus is not None
        for st in stages:
            self.tracker.observe(
                st,
                self.bus.watermarks(st.topic),
                self.bus.committed(st.group, st.topic),
                self.bus.group_alive(st.group),
                now,
            )
        self.tracker.rates(stages, now)

    # ---- history ---------------------------------------------------------------------------

    def record(self, snap: Snapshot) -> int:
        """Write one history row per stage; return the number of rows."""
        ensure_schema(self.ledger.engine)
        at = _utc(snap.at)
        rows = [
            {
                "at": at,
                "stage": s.stage,
                "queued": s.counts.get("queued", 0) + s.counts.get("pending", 0),
                "running": s.counts.get("running", 0),
                "done": s.counts.get("done", 0),
                "failed": sum(s.counts.get(k, 0) for k in ("failed", "retrying", "dead")),
                "files_per_min": s.files_per_min,
                "failure_rate": s.failure_rate,
                "produced": s.produced,
                "consumed": s.consumed,
                "lag": s.lag,
                "lag_status": s.lag_status.value if s.produced is not None else None,
            }
            for s in snap.stages
        ]
        parts = [
            {
                "at": at,
                "stage": s.stage,
                "group": p.group,
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "high": p.high,
                "lag": p.lag,
                "status": p.status.value,
                "reason": p.reason[:255],
            }
            for s in snap.stages
            for p in s.partitions
        ]
        with self.ledger.engine.begin() as conn:
            conn.execute(insert(history_table), rows)
            if parts:
                conn.execute(insert(partitions_table), parts)
        return len(rows)

    def prune_history(self, before: dt.datetime) -> int:
        """Delete history rows older than ``before``; return how many."""
        ensure_schema(self.ledger.engine)
        return _prune(self.ledger, before)


def _prune(ledger: Ledger, before: dt.datetime) -> int:
    with ledger.engine.begin() as conn:
        res = conn.execute(delete(history_table).where(history_table.c.at < before))
        conn.execute(delete(partitions_table).where(partitions_table.c.at < before))
        return int(res.rowcount or 0)


def _read_rows(
    ledger: Ledger, t: Table, since: dt.datetime | None, stage: str | None = None
) -> list[dict[str, Any]]:
    """Rows of one of the monitor's history tables (oldest first), times in UTC."""
    ensure_schema(ledger.engine)
    q = select(t).order_by(t.c.at, t.c.id)
    if stage is not None:
        q = q.where(t.c.stage == stage)
    if since is not None:
        q = q.where(t.c.at >= since)
    with ledger.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
    for r in rows:
        r["at"] = r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=dt.UTC)
    return rows


def read_history(
    ledger: Ledger, stage: str | None = None, since: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """History rows (oldest first), optionally of one stage and since a time."""
    return _read_rows(ledger, history_table, since, stage)


def read_partition_history(
    ledger: Ledger, since: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Per-partition lag rows (oldest first), optionally since a time."""
    return _read_rows(ledger, partitions_table, since)


def open_monitor(state_dir: str | Path, **kwargs: Any) -> Monitor:
    """A :class:`Monitor` on the pipeline in ``state_dir`` (its ledger and broker), with the
    window, thresholds and rules of its stages YAML's ``monitor`` section unless given."""
    settings = KupSettings.load(state_dir)
    state_path = Path(state_dir) / "state.json"
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
    bootstrap = settings.bootstrap or state.get("bootstrap")
    config = settings.pipeline()
    kwargs.setdefault("window", config.monitor.window)
    kwargs.setdefault("thresholds", config.monitor.thresholds)
    kwargs.setdefault("rules", config.monitor.rules)
    ledger = Ledger(settings.database, config)
    return Monitor(ledger, bootstrap, group_prefix=settings.group_prefix, **kwargs)


def run_forever(
    state_dir: str | Path,
    interval: float = 10.0,
    *,
    stop: threading.Event | None = None,
    history_every: float | None = None,
    retention_days: float = 7.0,
    on_change: Callable[[list[Alert], list[dict[str, Any]]], None] | None = None,
    **kwargs: Any,
) -> None:
    """Collect, evaluate and store alerts, and write history until ``stop`` is set.

    Args:
        state_dir: the pipeline's state directory.
        interval: seconds between collections.
        stop: set it to end the loop (default: run until the process is stopped).
        history_every: seconds between history rows (default: every collection).
        retention_days: history rows older than this are deleted (checked hourly).
        on_change: called with the alerts newly raised and the rows newly resolved
            (routing: mail, chat, pager); raised and resolved alerts are also logged.
        **kwargs: passed to :class:`Monitor` (window, thresholds, rules, ...).

    Example:
        >>> run_forever("kup/", interval=5)    # doctest: +SKIP
    """
    stop = stop or threading.Event()
    mon = open_monitor(state_dir, **kwargs)
    store = AlertStore(mon.ledger.engine)
    next_history = next_prune = 0.0
    try:
        while not stop.is_set():
            try:
                snap = mon.collect()
                raised, resolved = store.sync(evaluate_rules(snap, mon.rules), _utc(snap.at))
                for a in raised:
                    log.warning("ALERT %s %s: %s", a.severity.value, a.rule, a.message)
                for r in resolved:
                    log.info("resolved %s %s: %s", r["severity"], r["rule"], r["message"])
                if on_change is not None and (raised or resolved):
                    on_change(raised, resolved)
                if snap.at >= next_history:
                    mon.record(snap)
                    next_history = snap.at + (history_every or interval) - 0.5 * interval
                if snap.at >= next_prune:
                    mon.prune_history(_utc(snap.at - retention_days * 86400.0))
                    next_prune = snap.at + 3600.0
            except Exception as exc:  # DB hiccup: keep going
                log.warning("monitor step failed, retrying: %s", exc)
            stop.wait(interval)
    finally:
        mon.close()
        mon.ledger.close()


def main(argv: list[str] | None = None) -> int:
    """``python -m jaas.kup.monitor STATE_DIR [INTERVAL]``."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s monitor %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_forever(args[0], float(args[1]) if len(args) > 1 else 10.0, stop=stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
