"""Database access for the transfer tables: requests, attempts, link quality, site replicas."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from jaas.db import ensure_schema
from jaas.transfer import tables as t
from jaas.transfer.errors import TransferFailure
from jaas.transfer.routing import LinkQuality
from jaas.transfer.states import TERMINAL, RequestState

__all__ = ["AttemptRow", "Ledger", "ReplicaRow", "RequestRow"]

Span = tuple[float, float]  # started, ended (seconds since the epoch)
Failure = TransferFailure | None


@dataclasses.dataclass(frozen=True)
class RequestRow:
    id: int
    file_id: int
    dest: str
    lfn: str
    checksum: str
    size: int | None
    run: int | None
    rule: str
    state: str
    wait_reason: str | None
    attempts: int
    next_try: float
    route: tuple[str, ...]
    created: float
    deadline: float | None
    updated: float

    @property
    def machine(self) -> RequestState:
        return RequestState(self.state, self.wait_reason, self.attempts, self.next_try, self.route)


@dataclasses.dataclass(frozen=True)
class AttemptRow:
    id: int
    request_id: int
    route: str
    hop: str
    started: float
    ended: float
    ok: bool
    error_class: str | None
    message: str | None


@dataclasses.dataclass(frozen=True)
class ReplicaRow:
    id: int
    file_id: int
    site: str
    url: str
    checksum: str | None
    verified: dt.datetime | None
    status: str
    route: str


def _request(row: Any) -> RequestRow:
    m = row._mapping
    route = tuple(m["route"].split(" -> ")) if m["route"] else ()
    return RequestRow(**{**dict(m), "route": route})


class Ledger:
    """The transfer tables on ``engine`` (created if missing)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema(engine)  # tables by migration 0005 of jaas.db

    # ------------------------------------------------------------------ requests
    def ensure_request(
        self,
        *,
        file_id: int,
        dest: str,
        lfn: str,
        checksum: str,
        size: int | None,
        run: int | None,
        rule: str,
        now: float,
        deadline: float | None,
    ) -> tuple[RequestRow, bool]:
        """The request for (file, dest), created queued if new; True when created."""
        existing = self.find(file_id, dest)
        if existing is not None:
            return existing, False
        values = {
            "file_id": file_id,
            "dest": dest,
            "lfn": lfn,
            "checksum": checksum,
            "size": size,
            "run": run,
            "rule": rule,
            "state": "queued",
            "wait_reason": "new request",
            "attempts": 0,
            "next_try": now,
            "route": "",
            "created": now,
            "deadline": deadline,
            "updated": now,
        }
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.requests).values(**values))
        except IntegrityError:  # created meanwhile by another process
            pass
        row = self.find(file_id, dest)
        assert row is not None
        return row, True

    def find(self, file_id: int, dest: str) -> RequestRow | None:
        q = select(t.requests).where(t.requests.c.file_id == file_id, t.requests.c.dest == dest)
        with self.engine.connect() as c:
            row = c.execute(q).first()
        return None if row is None else _request(row)

    def get(self, request_id: int) -> RequestRow | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.requests).where(t.requests.c.id == request_id)).first()
        return None if row is None else _request(row)

    def requests(
        self,
        *,
        run: int | None = None,
        states: Iterable[str] | None = None,
        file_id: int | None = None,
    ) -> list[RequestRow]:
        q = select(t.requests)
        if run is not None:
            q = q.where(t.requests.c.run == run)
        if states is not None:
            q = q.where(t.requests.c.state.in_(list(states)))
        if file_id is not None:
            q = q.where(t.requests.c.file_id == file_id)
        with self.engine.connect() as c:
            return [_request(r) for r in c.execute(q.order_by(t.requests.c.id))]

    def due(self, now: float) -> list[RequestRow]:
        q = select(t.requests).where(
            t.requests.c.state.not_in(list(TERMINAL | {"stuck"})), t.requests.c.next_try <= now
        )
        with self.engine.connect() as c:
            return [_request(r) for r in c.execute(q.order_by(t.requests.c.id))]

    def next_wakeup(self) -> float | None:
        q = select(t.requests.c.next_try).where(t.requests.c.state == "retrying")
        with self.engine.connect() as c:
            values = [r[0] for r in c.execute(q)]
        return min(values) if values else None

    def save(self, request_id: int, st: RequestState, now: float) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(t.requests)
                .where(t.requests.c.id == request_id)
                .values(
                    state=st.state,
                    wait_reason=st.wait_reason,
                    attempts=st.attempts,
                    next_try=st.next_try,
                    route=" -> ".join(st.route),
                    updated=now,
                )
            )

    # ------------------------------------------------------------------ attempts
    def add_attempt(
        self, request_id: int, route: str, hop: str, span: Span, failure: Failure = None
    ) -> None:
        """Record one attempt of ``hop`` on ``route`` over ``span``; ok unless ``failure``."""
        with self.engine.begin() as c:
            c.execute(
                insert(t.attempts).values(
                    request_id=request_id,
                    route=route,
                    hop=hop,
                    started=span[0],
                    ended=span[1],
                    ok=failure is None,
                    error_class=None if failure is None else failure.error_class,
                    message=None if failure is None else failure.reason,
                )
            )

    def attempts(self, request_id: int) -> list[AttemptRow]:
        q = (
            select(t.attempts)
            .where(t.attempts.c.request_id == request_id)
            .order_by(t.attempts.c.id)
        )
        with self.engine.connect() as c:
            return [AttemptRow(**dict(r._mapping)) for r in c.execute(q)]

    # ------------------------------------------------------------------ links
    def record_link(self, src: str, dst: str, ok: bool, nbytes: float, seconds: float) -> None:
        key = and_(t.link_stats.c.src == src, t.link_stats.c.dst == dst)
        with self.engine.begin() as c:
            if c.execute(select(t.link_stats.c.src).where(key)).first() is None:
                try:
                    with c.begin_nested():  # another thread may insert the same link first
                        c.execute(
                            insert(t.link_stats).values(
                                src=src, dst=dst, successes=0, failures=0, bytes=0.0, seconds=0.0
                            )
                        )
                except IntegrityError:
                    pass
            col = t.link_stats.c
            if ok:
                values = {
                    "successes": col.successes + 1,
                    "bytes": col.bytes + nbytes,
                    "seconds": col.seconds + seconds,
                }
            else:
                values = {"failures": col.failures + 1}
            c.execute(update(t.link_stats).where(key).values(**values))

    def link_quality(self) -> dict[tuple[str, str], LinkQuality]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.link_stats)).all()
        return {
            (r.src, r.dst): LinkQuality(r.successes, r.failures, r.bytes, r.seconds) for r in rows
        }

    # ------------------------------------------------------------------ replicas
    def set_replica(
        self,
        file_id: int,
        site: str,
        url: str,
        *,
        checksum: str | None,
        status: str,
        route: str = "",
        verified: dt.datetime | None = None,
    ) -> None:
        values = {
            "url": url,
            "checksum": checksum,
            "status": status,
            "route": route,
            "verified": verified,
        }
        key = and_(t.site_replicas.c.file_id == file_id, t.site_replicas.c.site == site)
        with self.engine.begin() as c:
            if c.execute(select(t.site_replicas.c.id).where(key)).first() is None:
                c.execute(insert(t.site_replicas).values(file_id=file_id, site=site, **values))
            else:
                c.execute(update(t.site_replicas).where(key).values(**values))

    def set_replica_status(self, file_id: int, site: str, status: str) -> None:
        key = and_(t.site_replicas.c.file_id == file_id, t.site_replicas.c.site == site)
        with self.engine.begin() as c:
            c.execute(update(t.site_replicas).where(key).values(status=status))

    def replicas(self, file_id: int | None = None, site: str | None = None) -> list[ReplicaRow]:
        q = select(t.site_replicas)
        if file_id is not None:
            q = q.where(t.site_replicas.c.file_id == file_id)
        if site is not None:
            q = q.where(t.site_replicas.c.site == site)
        q = q.order_by(t.site_replicas.c.file_id, t.site_replicas.c.id)
        with self.engine.connect() as c:
            rows = c.execute(q).all()
        out = []
        for r in rows:
            m = dict(r._mapping)
            if m["verified"] is not None and m["verified"].tzinfo is None:
                m["verified"] = m["verified"].replace(tzinfo=dt.UTC)
            out.append(ReplicaRow(**m))
        return out

    def replica(self, file_id: int, site: str) -> ReplicaRow | None:
        rows = self.replicas(file_id, site)
        return rows[0] if rows else None

    def drop_replica(self, file_id: int, site: str) -> None:
        key = and_(t.site_replicas.c.file_id == file_id, t.site_replicas.c.site == site)
        with self.engine.begin() as c:
            c.execute(delete(t.site_replicas).where(key))
