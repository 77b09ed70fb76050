"""Dashboard history: throughput and consumer lag per stage over time, broker state.

Read from the monitor's history table (``jaas.kup.monitor.read_history``: one row per
stage per collection) and the active alerts (``broker_down``): lag per stage's consumer
group over time. ``/api/dashboard/live`` adds each partition's lag and Burrow status and
the broker's topics now, from a monitor on the pipeline's broker (``settings.state_dir``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request

from jaas.kup.monitor import open_monitor, read_history
from jaas.portal.app import _ERRORS, LedgerDep, MinutesQ, ReaderDep
from jaas.portal.schemas import (
    BrokerOut,
    DashboardHistory,
    LagOut,
    LiveOut,
    StageSeries,
)
from jaas.portal.source import LedgerSource

__all__ = ["LiveLag", "close_live", "dashboard_history", "router"]

router = APIRouter(tags=["dashboard"])
MAX_POINTS = 600
RATE_WINDOW = 300.0  # s of history over which the consumption rate is taken


def _thin(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    step = max(1, -(-len(rows) // MAX_POINTS))
    return rows[::step] if step == 1 or not rows else [*rows[:-1:step], rows[-1]]


def _lag(stage: str, rows: list[dict[str, Any]]) -> LagOut:
    with_lag = [r for r in rows if r["lag"] is not None]
    if not with_lag:
        return LagOut(stage=stage, lag=None, seconds_behind=None, trend=None, status=None)
    last = with_lag[-1]
    t_last = last["at"].timestamp()
    recent = [r for r in with_lag if t_last - r["at"].timestamp() <= RATE_WINDOW]
    first = recent[0]
    span = t_last - first["at"].timestamp()
    behind: float | None = 0.0 if last["lag"] == 0 else None
    if span > 0 and last["consumed"] is not None and first["consumed"] is not None:
        rate = (last["consumed"] - first["consumed"]) / span
        if rate > 0:
            behind = last["lag"] / rate
    return LagOut(
        stage=stage,
        lag=last["lag"],
        seconds_behind=behind,
        trend=last["lag"] - with_lag[0]["lag"],
        status=last["lag_status"],
    )


def dashboard_history(source: LedgerSource, minutes: int) -> DashboardHistory:
    """Series per stage (chain order) since ``minutes`` ago, the lag now, the broker."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
    by_stage: dict[str, list[dict[str, Any]]] = {s.name: [] for s in source.ledger.config.stages}
    for r in read_history(source.ledger, since=since):
        by_stage.setdefault(r["stage"], []).append(r)
    series = []
    for stage, rows in by_stage.items():
        thin = _thin(rows)
        series.append(
            StageSeries(
                stage=stage,
                at=[r["at"].timestamp() for r in thin],
                files_per_min=[round(r["files_per_min"], 3) for r in thin],
                lag=[r["lag"] for r in thin],
                done=[r["done"] for r in thin],
            )
        )
    down = [a for a in source.alert_store.active() if a["rule"] == "broker_down"]
    if down:
        broker = BrokerOut(state="down", detail=down[0]["message"])
    elif any(r["produced"] is not None for rows in by_stage.values() for r in rows[-1:]):
        broker = BrokerOut(state="up", detail="the monitor reads offsets from the broker")
    else:
        broker = BrokerOut(state="unknown", detail="no broker data in the monitor's history")
    return DashboardHistory(
        minutes=minutes,
        stages=series,
        lag=[_lag(stage, rows) for stage, rows in by_stage.items()],
        broker=broker,
    )


@router.get("/api/dashboard/history", response_model=DashboardHistory, responses=_ERRORS)
def history(
    source: LedgerDep,
    _: ReaderDep,
    minutes: MinutesQ = 60,
) -> DashboardHistory:
    """Files/min and lag per stage over the last ``minutes`` (charts), lag now, broker."""
    return dashboard_history(source, minutes)


class LiveLag:
    """A monitor on the pipeline's broker (``settings.state_dir``), collected on demand:
    its Burrow windows fill with each call, so statuses evolve as the page polls."""

    def __init__(self, state_dir: Path, min_interval: float = 1.0) -> None:
        self.monitor = open_monitor(state_dir)
        self.min_interval = min_interval  # many clients share one collection per interval
        self._lock = threading.Lock()
        self._last: tuple[float, LiveOut] | None = None

    def live(self) -> LiveOut:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self.min_interval:
                return self._last[1]
            out = self._collect()
            self._last = (time.monotonic(), out)
            return out

    def _collect(self) -> LiveOut:
        snap = self.monitor.collect()
        b = snap.broker
        if b.bootstrap is None:
            broker = BrokerOut(state="unknown", detail="no broker configured")
        elif b.up:
            broker = BrokerOut(
                state="up", detail=f"{b.bootstrap}: {b.brokers} broker(s), cluster {b.cluster_id}"
            )
        else:
            broker = BrokerOut(state="down", detail=f"{b.bootstrap}: {b.error}")
        parts = [p for s in snap.stages for p in s.partitions]
        return LiveOut(broker=broker, topics=dict(b.topics), partitions=parts)

    def close(self) -> None:
        self.monitor.close()
        self.monitor.ledger.close()


def close_live(state: Any) -> None:
    """Close the live monitor of an app's state, if one was opened."""
    live: LiveLag | None = getattr(state, "live_lag", None)
    if live is not None:
        live.close()
        state.live_lag = None


@router.get("/api/dashboard/live", response_model=LiveOut, responses=_ERRORS)
def live(request: Request, _: ReaderDep) -> LiveOut:
    """The broker's state and topics, and the lag of every partition of every stage's
    group now (needs the pipeline's state directory: ``jaas portal STATE_DIR``)."""
    state = request.app.state
    if state.settings.state_dir is None:
        return LiveOut(broker=BrokerOut(state="unknown", detail="no pipeline state directory"))
    if getattr(state, "live_lag", None) is None:
        state.live_lag = LiveLag(state.settings.state_dir)
    lag: LiveLag = state.live_lag
    return lag.live()
