"""Dashboard history: throughput and consumer lag per stage over time, broker state.

Read from the monitor's history table (``jaas.kup.monitor.read_history``: one row per
stage per collection) and the active alerts (``broker_down``). Lag is per stage's consumer
group (the monitor's history keeps the group total, not each partition).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from jaas.kup.monitor import read_history
from jaas.portal.app import _ERRORS, LedgerDep, ReaderDep
from jaas.portal.schemas import BrokerOut, DashboardHistory, LagOut, StageSeries
from jaas.portal.source import LedgerSource

__all__ = ["dashboard_history", "router"]

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
    minutes: Annotated[int, Query(ge=1, le=7 * 24 * 60, description="window")] = 60,
) -> DashboardHistory:
    """Files/min and lag per stage over the last ``minutes`` (charts), lag now, broker."""
    return dashboard_history(source, minutes)
