"""The store of alerts in the ledger DB (raised, updated in place, resolved); the rules
themselves are pure and live in :mod:`jaas.kup.alert_rules` (re-exported here).

An alert is identified by ``(rule, subject)``; while active it is one row, updated in
place (de-duplicated); when its condition clears the row gets its ``resolved`` time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from jaas.db import ensure_schema
from jaas.kup.alert_rules import Alert, AlertRules, Severity, evaluate_rules
from jaas.kup.ledger import metadata

__all__ = ["Alert", "AlertRules", "AlertStore", "Severity", "alerts_table", "evaluate_rules"]


alerts_table = Table(
    "kup_alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("value", Float),
    Column("raised", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Column("resolved", DateTime(timezone=True)),
    Index("ix_kup_alerts_active", "rule", "subject", "resolved"),
)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


def _row(r: Any) -> dict[str, Any]:
    d = dict(r._mapping)
    for k in ("raised", "last_seen", "resolved"):
        d[k] = _aware(d[k])
    return d


class AlertStore:
    """Active and past alerts in the ledger DB (table ``kup_alerts``).

    Args:
        engine: the ledger's engine (``Ledger.engine``); the table is created if missing.

    Example:
        >>> store = AlertStore(ledger.engine)                       # doctest: +SKIP
        >>> raised, resolved = store.sync(evaluate_rules(snapshot))  # doctest: +SKIP
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema(engine)

    def sync(
        self, current: Sequence[Alert], now: dt.datetime | None = None
    ) -> tuple[list[Alert], list[dict[str, Any]]]:
        """Store the alerts that hold now; resolve the active ones that no longer hold.

        Returns the alerts newly raised and the rows newly resolved.
        """
        now = now or dt.datetime.now(dt.UTC)
        t = alerts_table
        by_key = {a.key: a for a in current}
        raised: list[Alert] = []
        resolved: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            active = conn.execute(select(t).where(t.c.resolved.is_(None))).all()
            seen: set[tuple[str, str]] = set()
            for row in active:
                key = (row.rule, row.subject)
                a = by_key.get(key)
                if a is None or key in seen:  # cleared (or a duplicate row: close it)
                    conn.execute(update(t).where(t.c.id == row.id).values(resolved=now))
                    resolved.append({**_row(row), "resolved": now})
                    continue
                seen.add(key)
                conn.execute(
                    update(t)
                    .where(t.c.id == row.id)
                    .values(
                        last_seen=now, severity=a.severity.value, message=a.message, value=a.value
                    )
                )
            for key, a in by_key.items():
                if key in seen:
                    continue
                conn.execute(
                    insert(t).values(
                        rule=a.rule,
                        subject=a.subject,
                        severity=a.severity.value,
                        message=a.message,
                        value=a.value,
                        raised=now,
                        last_seen=now,
                    )
                )
                raised.append(a)
        return raised, resolved

    def active(self) -> list[dict[str, Any]]:
        """Active alerts, most severe first, then oldest first."""
        t = alerts_table
        order = {Severity.CRITICAL.value: 0, Severity.WARNING.value: 1, Severity.INFO.value: 2}
        with self.engine.connect() as conn:
            rows = [_row(r) for r in conn.execute(select(t).where(t.c.resolved.is_(None)))]
        return sorted(rows, key=lambda d: (order.get(d["severity"], 3), d["raised"], d["id"]))

    def recent(self, since: dt.datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Alerts raised since ``since`` (default: any time), newest first, active or not."""
        t = alerts_table
        q = select(t).order_by(t.c.raised.desc(), t.c.id.desc()).limit(limit)
        if since is not None:
            q = q.where(t.c.raised >= since)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    def counts(self) -> dict[str, int]:
        """Active alerts per severity (every severity present, zero if none)."""
        out = {s.value: 0 for s in Severity}
        for a in self.active():
            out[a["severity"]] = out.get(a["severity"], 0) + 1
        return out
