"""Lag history per partition: each (group, partition)'s lag trend and Burrow status.

Read from the monitor's table ``kup_lag_partitions`` (:func:`jaas.kup.monitor.
read_partition_history`: one row per partition of every stage's consumer group per
history sample). Seconds behind = lag / the partition's consumption rate over the
``RATE_WINDOW`` s before each sample (committed offsets' progress); 0 when caught up,
null when nothing was consumed in that time (a stopped consumer: its status says STOP).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from jaas.kup.monitor import read_partition_history
from jaas.portal.app import _ERRORS, LedgerDep, MinutesQ, ReaderDep
from jaas.portal.source import LedgerSource

__all__ = ["LagHistory", "PartitionSeries", "partition_history", "router"]

router = APIRouter(tags=["dashboard"])
RATE_WINDOW = 300.0  # s of samples over which a partition's consumption rate is taken
MAX_POINTS = 240  # per partition in one answer (older samples are thinned)


class PartitionSeries(BaseModel):
    """One partition of one stage's consumer group over the window, and its state now."""

    stage: str
    group: str
    topic: str
    partition: int
    status: str = Field(description="Burrow status now: OK, WARN, ERR, STALL, STOP, REWIND")
    reason: str | None = Field(description="why the status (Burrow's rule that applied)")
    lag: int = Field(description="messages not yet consumed now")
    seconds_behind: float | None = Field(
        description="lag / recent consumption rate now (null: nothing consumed lately)"
    )
    trend: int = Field(description="change of the lag over the window")
    at: list[float] = Field(description="UNIX s of each sample")
    lags: list[int] = Field(description="lag (messages) at each sample")
    behind: list[float | None] = Field(description="seconds behind at each sample")
    statuses: list[str] = Field(description="Burrow status at each sample")


class LagHistory(BaseModel):
    """Every partition's lag series since ``minutes`` ago (chain order, then partition)."""

    minutes: int
    partitions: list[PartitionSeries] = Field(default_factory=list)


def _behind(rows: list[dict[str, Any]]) -> list[float | None]:
    out: list[float | None] = []
    for i, r in enumerate(rows):
        if r["lag"] == 0:
            out.append(0.0)
            continue
        t = r["at"].timestamp()
        base = next(b for b in rows[: i + 1] if t - b["at"].timestamp() <= RATE_WINDOW)
        span = t - base["at"].timestamp()
        done = (r["committed"] or 0) - (base["committed"] or 0)
        out.append(round(r["lag"] * span / done, 1) if span > 0 and done > 0 else None)
    return out


def _series(key: tuple[str, str, str, int], rows: list[dict[str, Any]]) -> PartitionSeries:
    behind = _behind(rows)
    step = max(1, -(-len(rows) // MAX_POINTS))
    keep = list(range(len(rows) - 1, -1, -step))[::-1]  # the newest sample always kept
    last = rows[-1]
    return PartitionSeries(
        stage=key[0],
        group=key[1],
        topic=key[2],
        partition=key[3],
        status=last["status"],
        reason=last["reason"],
        lag=last["lag"],
        seconds_behind=behind[-1],
        trend=last["lag"] - rows[0]["lag"],
        at=[rows[i]["at"].timestamp() for i in keep],
        lags=[rows[i]["lag"] for i in keep],
        behind=[behind[i] for i in keep],
        statuses=[rows[i]["status"] for i in keep],
    )


def partition_history(source: LedgerSource, minutes: int) -> LagHistory:
    """The per-partition lag series of the pipeline behind ``source`` (a LedgerSource)."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)
    rows = read_partition_history(source.ledger, since)
    by: dict[tuple[str, str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[(r["stage"], r["group"], r["topic"], r["partition"])].append(r)
    order = {s.name: i for i, s in enumerate(source.ledger.config.stages)}
    keys = sorted(by, key=lambda k: (order.get(k[0], len(order)), k[0], k[2], k[3]))
    return LagHistory(minutes=minutes, partitions=[_series(k, by[k]) for k in keys])


@router.get("/api/dashboard/lag-partitions", response_model=LagHistory, responses=_ERRORS)
def lag_partitions(
    source: LedgerDep,
    _: ReaderDep,
    minutes: MinutesQ = 60,
) -> LagHistory:
    """Each partition's lag (messages, seconds behind) and Burrow status over the last
    ``minutes``, from the monitor's per-partition history."""
    return partition_history(source, minutes)
