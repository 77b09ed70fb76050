"""Alert handling: rules with thresholds, per-entity instances, acknowledge and silence.

Acknowledgements and silences are audited rows (who, when, note) in the table
``portal_alert_actions`` of the pipeline DB (migration 0006 of :mod:`jaas.db`). An ack
belongs to one alert instance (its id); a silence to an entity (the alert's subject:
stage, consumer group, run), optionally one rule, until a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request

from jaas.db import ensure_schema
from jaas.errors import NotInCatalogError
from jaas.portal.app import _ERRORS, LedgerDep, OperatorDep, ReaderDep
from jaas.portal.auth import _aware
from jaas.portal.schemas import (
    AckRequest,
    AlertActionOut,
    AlertInstance,
    ErrorOut,
    RuleOut,
    SilenceRequest,
)

__all__ = ["AlertActions", "router"]

router = APIRouter(tags=["alerts"])
metadata = sa.MetaData()
actions_table = sa.Table(
    "portal_alert_actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("who", sa.String(128), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("alert_id", sa.Integer),
    sa.Column("rule", sa.String(64)),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("until", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
)

RULES = {
    "failure_rate": "share of a stage's attempts that failed in the failure window",
    "stuck_running": "attempts running longer than the stage timeout x stuck_factor",
    "stuck_queued": "jobs queued for queued_stall s while no attempt of the stage started",
    "lag": "consumer group lag status (Burrow): WARN -> warning, STALL/STOP/ERR -> critical",
    "broker_down": "the broker does not answer -> critical",
}
_THRESHOLDS = {
    "failure_rate": ("failure_window", "failure_warn", "failure_critical", "min_attempts"),
    "stuck_running": ("stuck_factor",),
    "stuck_queued": ("queued_stall",),
    "lag": ("window", "lag_warn", "lag_error"),  # window: observations x monitor interval
}


class AlertActions:
    """Audited acks and silences of alerts."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        ensure_schema(engine)  # the one upgrade path of jaas.db (migration 0006)

    def add(self, **values: Any) -> AlertActionOut:
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            pk = conn.execute(
                sa.insert(actions_table).values(at=now, **values)
            ).inserted_primary_key
        return AlertActionOut(id=int(pk[0]) if pk else 0, at=now, **values)

    def log(self, limit: int = 200) -> list[AlertActionOut]:
        t = actions_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.id.desc()).limit(limit)).all()
        return [
            AlertActionOut.model_validate(
                {**r._mapping, "at": _aware(r.at), "until": _aware(r.until)}
            )
            for r in rows
        ]

    def annotate(self, alerts: list[dict[str, Any]]) -> list[AlertInstance]:
        """Each alert with its latest ack and the longest silence covering it now."""
        now = dt.datetime.now(dt.UTC)
        acts = list(reversed(self.log(limit=10_000)))
        out = []
        for a in alerts:
            inst = AlertInstance.model_validate(a)
            for act in acts:
                if act.action == "ack" and act.alert_id == inst.id:
                    inst.acked_by, inst.acked_at, inst.ack_note = act.who, act.at, act.note
                covers = act.subject == inst.subject and act.rule in (None, inst.rule)
                until = act.until if act.action == "silence" and covers else None
                if until is not None and until > now:
                    inst.silenced_until = max(until, inst.silenced_until or until)
            out.append(inst)
        return out


def get_actions(request: Request) -> AlertActions:
    state = request.app.state
    if getattr(state, "alert_actions", None) is None:
        state.alert_actions = AlertActions(state.source.ledger.engine)
    actions: AlertActions = state.alert_actions
    return actions


ActionsDep = Annotated[AlertActions, Depends(get_actions)]
_NOT_FOUND = {**_ERRORS, 404: {"model": ErrorOut, "description": "unknown alert"}}


@router.get("/api/alerts/rules", response_model=list[RuleOut], responses=_ERRORS)
def rules(source: LedgerDep, _: ReaderDep) -> list[RuleOut]:
    """The alert rules and their thresholds as the pipeline configures them (the
    ``monitor`` section of its stages YAML; the monitor's defaults where it says nothing)."""
    config = source.ledger.config.monitor
    values: dict[str, float | None] = dict(dataclasses.asdict(config.rules))
    values |= {"window": config.window, "lag_warn": config.lag_warn, "lag_error": config.lag_error}
    return [
        RuleOut(
            name=name,
            description=text,
            thresholds={
                k: float(v) for k in _THRESHOLDS.get(name, ()) if (v := values[k]) is not None
            },
        )
        for name, text in RULES.items()
    ]


@router.get("/api/alerts/instances", response_model=list[AlertInstance], responses=_ERRORS)
def instances(
    source: LedgerDep,
    actions: ActionsDep,
    _: ReaderDep,
    active: bool = True,
    subject: Annotated[str | None, Query(max_length=255, description="one entity")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertInstance]:
    """Alerts (active, or the latest raised) per entity, with their ack and silence."""
    rows = source.alert_store.active() if active else source.alert_store.recent(limit=limit)
    rows = [r for r in rows if subject is None or r["subject"] == subject][:limit]
    return actions.annotate(rows)


@router.post("/api/alerts/{alert_id}/ack", response_model=AlertActionOut, responses=_NOT_FOUND)
def ack(
    source: LedgerDep, actions: ActionsDep, who: OperatorDep, alert_id: int, body: AckRequest
) -> AlertActionOut:
    """Acknowledge one alert instance (audited: who, when, note)."""
    from jaas.kup.alerts import alerts_table as t  # by its id, active or resolved

    a = None
    if -(2**63) <= alert_id < 2**63:  # beyond: no database integer, so no such alert
        with source.ledger.engine.connect() as conn:
            q = sa.select(t.c.rule, t.c.subject).where(t.c.id == alert_id)
            a = conn.execute(q).first()
    if a is None:
        raise NotInCatalogError(f"no alert with id {alert_id}")
    return actions.add(
        who=who.name,
        action="ack",
        alert_id=alert_id,
        rule=a.rule,
        subject=a.subject,
        until=None,
        note=body.note,
    )


@router.post("/api/alerts/silence", response_model=AlertActionOut, responses=_ERRORS)
def silence(actions: ActionsDep, who: OperatorDep, body: SilenceRequest) -> AlertActionOut:
    """Silence the alerts of one entity (one rule or all) for ``minutes`` (audited)."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=body.minutes)
    return actions.add(
        who=who.name,
        action="silence",
        alert_id=None,
        rule=body.rule,
        subject=body.subject,
        until=until,
        note=body.note,
    )


@router.get("/api/alerts/actions", response_model=list[AlertActionOut], responses=_ERRORS)
def audit(
    actions: ActionsDep, _: ReaderDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[AlertActionOut]:
    """The audit of acks and silences, newest first."""
    return actions.log(limit)
