"""The pipeline ledger in the catalog DB: jobs, attempts, outbox and audit tables (SQLAlchemy 2).

Every state change goes through :func:`jaas.kup.states.transition` inside one DB
transaction, and the messages it implies are written to the outbox in that same
transaction; :mod:`jaas.kup.relay` publishes them afterwards. SQLite (default) and
PostgreSQL run the same code: on SQLite write transactions take the lock at BEGIN
(``BEGIN IMMEDIATE``), on PostgreSQL job rows are locked with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from jaas.db import ensure_schema, make_engine
from jaas.errors import PipelineError
from jaas.kup.config import PipelineConfig
from jaas.kup.states import (
    Classification,
    EmitNext,
    Event,
    Fail,
    Instruction,
    JobKey,
    JobState,
    KillJob,
    Lost,
    PublishStage,
    Reset,
    Retry,
    ScheduleRetry,
    SendToDeadLetter,
    Start,
    State,
    Submit,
    Succeed,
    Timeout,
    transition,
)

__all__ = [
    "LOST",
    "OUTBOX_CHANNEL",
    "Ledger",
    "Orphan",
    "OrphanVerdict",
    "OutboxMessage",
    "Ticket",
    "dead_letter_topic",
    "metadata",
]

metadata = MetaData()

jobs = Table(
    "kup_jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file", String(512), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_reason", Text),
    Column("input_path", Text),
    Column("output_path", Text),
    Column("retry_at", DateTime(timezone=True)),
    Column("lease_until", DateTime(timezone=True)),
    Column("owner", String(128)),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    UniqueConstraint("file", "stage", "version", name="uq_kup_jobs_key"),
)

attempts = Table(
    "kup_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("kup_jobs.id"), nullable=False, index=True),
    Column("number", Integer, nullable=False),
    Column("worker", String(128)),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True)),
    Column("exit_code", Integer),
    Column("log_path", Text),
    Column("reason", Text),
    Column("classification", String(16)),
)

#: PostgreSQL channel notified (at commit) by every transaction that writes outbox rows
OUTBOX_CHANNEL = "jaas_kup_outbox"

outbox = Table(
    "kup_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("key", String(512), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), index=True),
)

audit = Table(
    "kup_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("who", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("file", String(512), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("note", Text),
)

# read-model indexes (migration 0005): jobs by stage/state in id order, by last change,
# recent attempts, a file's messages
Index("ix_kup_jobs_stage_state_id", jobs.c.stage, jobs.c.state, jobs.c.id)
Index("ix_kup_jobs_state_id", jobs.c.state, jobs.c.id)
Index("ix_kup_jobs_updated_id", jobs.c.updated, jobs.c.id)
Index("ix_kup_attempts_ended", attempts.c.ended)
Index("ix_kup_outbox_key", outbox.c.key)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


def _job_dict(r: Any, *, paths: bool = False) -> dict[str, Any]:
    """A job row as reported: file, stage, version, state, attempts, reason (and with
    ``paths`` its input and output paths and last update)."""
    out = {k: getattr(r, k) for k in ("file", "stage", "version", "state", "attempts")}
    out["reason"] = r.last_reason
    if paths:
        out.update(input_path=r.input_path, output_path=r.output_path, updated=_aware(r.updated))
    return out


def dead_letter_topic(input_topic: str) -> str:
    """Topic where a stage's given-up files are announced (``<input>.dead``)."""
    return f"{input_topic}.dead"


@dataclass(frozen=True)
class Ticket:
    """An attempt a worker was allowed to launch (returned by :meth:`Ledger.start`)."""

    job_id: int
    attempt_id: int
    key: JobKey
    attempt: int
    input_path: str | None
    log_path: str | None
    rebuild: str | None = None  # why the job's products are made again (an operator reset)


@dataclass(frozen=True)
class OutboxMessage:
    """An outbox row to publish: Kafka topic, key (the file) and JSON payload."""

    id: int
    message_id: str
    topic: str
    key: str
    payload: dict[str, Any]


LOST = "lost"  # attempts.classification of an attempt lost with its worker


@dataclass(frozen=True)
class Orphan:
    """A running attempt whose worker is gone, as :meth:`Ledger.reclaim` hands it over."""

    ticket: Ticket
    owner: str | None


@dataclass(frozen=True)
class OrphanVerdict:
    """What became of an orphaned attempt: still running, or its result, or lost."""

    kind: Literal["running", "succeeded", "failed", "lost"]
    output: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    classification: Classification | None = None


def _state_of(row: Row[Any]) -> JobState:
    return JobState(
        JobKey(row.file, row.stage, row.version),
        State(row.state),
        row.attempts,
        row.last_reason,
        _aware(row.retry_at),
    )


class Ledger:
    """Jobs, attempts, outbox and audit of the pipeline in one SQL database.

    Args:
        url: SQLAlchemy URL (``sqlite:///path/kup.db`` or ``postgresql+psycopg://...``).
        config: the stage chain (for versions, retry policies and the next stage).
        create: create the tables if they do not exist.

    Example:
        >>> ledger = Ledger("sqlite:///kup.db", load_stages())   # doctest: +SKIP
        >>> ledger.submit_files(["run1_0001.raw"])                # doctest: +SKIP
    """

    def __init__(self, url: str, config: PipelineConfig, *, create: bool = True) -> None:
        self.url = url
        self.config = config
        self.engine: Engine = make_engine(url)
        if create:
            ensure_schema(self.engine)  # Alembic migrations of jaas.db (one version table)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ---- core: apply one event, with its instructions, in the caller's transaction -------

    def _lock(self, conn: Connection, key: JobKey) -> Row[Any] | None:
        q = select(jobs).where(
            jobs.c.file == key.file, jobs.c.stage == key.stage, jobs.c.version == key.version
        )
        return conn.execute(q.with_for_update()).first()

    def _apply(
        self, conn: Connection, row: Row[Any], ev: Event, now: dt.datetime, **extra: Any
    ) -> tuple[JobState, list[Instruction]]:
        old = _state_of(row)
        if isinstance(ev, Fail | Timeout | Lost):  # the retry budget counts real failures
            q = select(func.count()).where(
                attempts.c.job_id == row.id, attempts.c.classification == LOST
            )
            old = dataclasses.replace(old, lost=int(conn.execute(q).scalar_one()))
        policy = self.config.stage(row.stage).retry_policy
        new, todo = transition(old, ev, policy=policy, now=now)
        values = {
            "state": new.state.value,
            "attempts": new.attempts,
            "last_reason": new.last_reason,
            "retry_at": new.retry_at,
            "updated": now,
            **extra,
        }
        if new.state is not State.RUNNING:
            values.setdefault("lease_until", None)
        conn.execute(update(jobs).where(jobs.c.id == row.id).values(**values))
        for instruction in todo:
            self._carry_out(conn, instruction, row, now, extra.get("output_path"))
        return new, todo

    def _carry_out(
        self,
        conn: Connection,
        ins: Instruction,
        row: Row[Any],
        now: dt.datetime,
        output: str | None,
    ) -> None:
        match ins:
            case PublishStage(key=key):
                stage = self.config.stage(key.stage)
                self._enqueue(conn, stage.input, key, {"input": row.input_path}, now)
            case EmitNext(key=key):
                nxt = self.config.next_stage(key.stage)
                if nxt is not None:
                    nkey = JobKey(key.file, nxt.name, nxt.version)
                    self._submit(conn, nkey, output or row.input_path, now)
            case SendToDeadLetter(key=key, reason=reason):
                topic = dead_letter_topic(self.config.stage(key.stage).input)
                self._enqueue(conn, topic, key, {"reason": reason}, now)
            case ScheduleRetry() | KillJob():
                pass  # retry_at is stored with the state; killing is the worker's business

    def _enqueue(
        self, conn: Connection, topic: str, key: JobKey, extra: dict[str, Any], now: dt.datetime
    ) -> None:
        payload = {"file": key.file, "stage": key.stage, "version": key.version, **extra}
        conn.execute(
            insert(outbox).values(
                message_id=uuid.uuid4().hex,
                topic=topic,
                key=key.file,
                payload=payload,
                created=now,
            )
        )
        if conn.dialect.name == "postgresql":  # wakes a LISTENing relay at commit
            conn.execute(select(func.pg_notify(OUTBOX_CHANNEL, "")))

    def _submit(
        self, conn: Connection, key: JobKey, input_path: str | None, now: dt.datetime
    ) -> bool:
        """Create the job if needed and move it pending -> queued; False if it already moved."""
        row = self._lock(conn, key)
        if row is None:
            conn.execute(
                insert(jobs).values(
                    file=key.file,
                    stage=key.stage,
                    version=key.version,
                    state=State.PENDING.value,
                    attempts=0,
                    input_path=input_path,
                    created=now,
                    updated=now,
                )
            )
            row = self._lock(conn, key)
            assert row is not None
        elif row.state == State.PENDING.value:
            conn.execute(update(jobs).where(jobs.c.id == row.id).values(input_path=input_path))
            row = self._lock(conn, key)
            assert row is not None
        if row.state != State.PENDING.value:
            return False  # duplicate: the job already exists past pending
        self._apply(conn, row, Submit(), now)
        return True

    # ---- entry points used by ingest, workers and the relay --------------------------------

    def submit_files(self, paths: Iterable[str | Path]) -> list[JobKey]:
        """Queue files for the first stage (ingest); files already known are left alone.

        Returns the keys of the jobs that were newly queued.
        """
        first = self.config.stages[0]
        queued: list[JobKey] = []
        with self._tx() as conn:
            now = _now()
            for p in paths:
                path = Path(p).resolve()
                key = JobKey(path.name, first.name, first.version)
                if self._submit(conn, key, str(path), now):
                    queued.append(key)
        return queued

    def start(self, key: JobKey, *, worker: str, log_dir: str | None = None) -> Ticket | None:
        """Take a queued job for a new attempt; None if the message is a duplicate or stale.

        The attempt row (with its log path ``log_dir/FILE.ATTEMPT.log``) and the lease
        (timeout + 60 s) are written in the same transaction.
        """
        stage = self.config.stage(key.stage)
        with self._tx() as conn:
            row = self._lock(conn, key)
            if row is None or row.state != State.QUEUED.value:
                return None
            now = _now()
            lease = now + dt.timedelta(seconds=stage.timeout + 60.0)
            new, _ = self._apply(conn, row, Start(), now, lease_until=lease, owner=worker)
            log_path = (
                None if log_dir is None else str(Path(log_dir) / f"{key.file}.{new.attempts}.log")
            )
            res = conn.execute(
                insert(attempts).values(
                    job_id=row.id,
                    number=new.attempts,
                    worker=worker,
                    started=now,
                    log_path=log_path,
                )
            )
            attempt_id = res.inserted_primary_key[0] if res.inserted_primary_key else 0
            last_reset = conn.execute(
                select(audit.c.who, audit.c.note)
                .where(
                    audit.c.file == key.file,
                    audit.c.stage == key.stage,
                    audit.c.version == key.version,
                    audit.c.action == "reset",
                )
                .order_by(audit.c.id.desc())
                .limit(1)
            ).first()
            rebuild = (
                None
                if last_reset is None
                else f"keep-up reset by {last_reset.who}"
                + (f": {last_reset.note}" if last_reset.note else "")
            )
            return Ticket(
                row.id, int(attempt_id), key, new.attempts, row.input_path, log_path, rebuild
            )

    def reclaim(
        self,
        stage: str,
        alive: Callable[[str], bool],
        inspect: Callable[[Orphan], OrphanVerdict] | None = None,
    ) -> int:
        """Settle the running attempts of ``stage`` whose worker is no longer alive.

        ``inspect`` looks at each orphan (its result file, its process): a result is
        recorded as if the worker had reaped it, a live process is left running (ask
        again later), and an attempt with neither is lost: closed (end time, no exit
        code, reason "worker lost") and retried without charging the retry budget.
        Without ``inspect`` every orphan is lost. Returns the attempts settled.
        """
        q = (
            select(jobs, attempts.c.id.label("attempt_id"), attempts.c.log_path.label("log"))
            .select_from(
                jobs.outerjoin(
                    attempts,
                    (attempts.c.job_id == jobs.c.id)
                    & (attempts.c.number == jobs.c.attempts)
                    & attempts.c.ended.is_(None),
                )
            )
            .where(jobs.c.stage == stage, jobs.c.state == State.RUNNING.value)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        n = 0
        for row in rows:
            if row.owner is not None and alive(row.owner):
                continue
            key = JobKey(row.file, row.stage, row.version)
            ticket = Ticket(row.id, row.attempt_id or 0, key, row.attempts, row.input_path, row.log)
            verdict = (
                OrphanVerdict("lost") if inspect is None else inspect(Orphan(ticket, row.owner))
            )
            if verdict.kind == "running":
                continue
            if verdict.kind == "succeeded":
                self.finish(ticket, exit_code=0, output_path=verdict.output)
            elif verdict.kind == "failed":
                self.finish(
                    ticket,
                    exit_code=verdict.exit_code,
                    reason=verdict.reason,
                    classification=verdict.classification or Classification.TRANSIENT,
                )
            else:
                self.lose(ticket, f"worker {row.owner} died during the attempt (worker lost)")
            n += 1
        return n

    def lose(self, ticket: Ticket, reason: str = "worker lost") -> JobState | None:
        """Close a lost attempt and retry its job at once, uncharged (None: job unknown)."""
        with self._tx() as conn:
            row = self._lock(conn, ticket.key)
            if row is None:
                return None
            if row.attempts != ticket.attempt:  # the job moved on meanwhile
                return _state_of(row)
            return self._lose(conn, row, ticket.attempt_id, reason, _now())

    def _lose(
        self, conn: Connection, row: Row[Any], attempt_id: int, reason: str, now: dt.datetime
    ) -> JobState:
        new = _state_of(row)
        if row.state == State.RUNNING.value:
            new, _ = self._apply(conn, row, Lost(reason), now)
        where = (
            attempts.c.id == attempt_id
            if attempt_id
            else (attempts.c.job_id == row.id) & attempts.c.ended.is_(None)
        )
        conn.execute(
            update(attempts)
            .where(where, attempts.c.ended.is_(None))
            .values(ended=now, exit_code=None, reason=reason, classification=LOST)
        )
        return new

    def finish(
        self,
        ticket: Ticket,
        *,
        exit_code: int | None,
        output_path: str | None = None,
        reason: str | None = None,
        classification: Classification | None = None,
        timed_out: float | None = None,
    ) -> JobState:
        """Record the end of an attempt and move the job on (done, retrying or dead).

        If the job was meanwhile reset, cancelled or expired, only the attempt is recorded.
        """
        with self._tx() as conn:
            now = _now()
            conn.execute(
                update(attempts)
                .where(attempts.c.id == ticket.attempt_id)
                .values(
                    ended=now,
                    exit_code=exit_code,
                    reason=reason,
                    classification=None if classification is None else classification.value,
                )
            )
            row = self._lock(conn, ticket.key)
            if row is None:
                raise PipelineError(f"{ticket.key}: job vanished from the ledger {self.url}")
            if row.state != State.RUNNING.value or row.attempts != ticket.attempt:
                return _state_of(row)
            ev: Event
            if timed_out is not None:
                ev = Timeout(timed_out)
            elif classification is None:
                ev = Succeed()
            else:
                ev = Fail(classification, reason or f"exit code {exit_code}")
            extra = {"output_path": output_path} if output_path is not None else {}
            new, _ = self._apply(conn, row, ev, now, **extra)
            return new

    def fire_due_retries(self, now: dt.datetime | None = None) -> int:
        """Queue (with a message) every retrying job whose backoff has expired."""
        now = now or _now()
        return self._sweep(now, jobs.c.state == State.RETRYING.value, jobs.c.retry_at <= now)

    def expire_leases(self, now: dt.datetime | None = None) -> int:
        """Close as lost (uncharged retry) every running attempt whose lease expired."""
        now = now or _now()
        return self._sweep(now, jobs.c.state == State.RUNNING.value, jobs.c.lease_until < now)

    def _sweep(self, now: dt.datetime, *where: Any) -> int:
        with self._tx() as conn:
            rows = conn.execute(select(jobs).where(*where).with_for_update()).all()
            for row in rows:
                if row.state == State.RETRYING.value:
                    self._apply(conn, row, Retry(), now)
                else:
                    why = f"worker {row.owner} lost (lease expired)"
                    self._lose(conn, row, 0, why, now)
            return len(rows)

    def requeue_lost(self) -> int:
        """Reconciliation: write a fresh outbox message for every queued job.

        Use when the broker lost its messages (the embedded broker keeps nothing across a
        restart); duplicates are harmless because a worker only starts queued jobs.
        """
        with self._tx() as conn:
            now = _now()
            rows = conn.execute(select(jobs).where(jobs.c.state == State.QUEUED.value)).all()
            for row in rows:
                key = JobKey(row.file, row.stage, row.version)
                topic = self.config.stage(row.stage).input
                self._enqueue(conn, topic, key, {"input": row.input_path}, now)
            return len(rows)

    def requeue_unconsumed(
        self, stage: str, published_before: dt.datetime, limit: int = 500
    ) -> list[str]:
        """Write a fresh outbox message for queued jobs of ``stage`` whose messages were all
        published before ``published_before`` (or that have none); return their files.

        Only meaningful when the stage's consumer group has committed every offset of its
        topic (see :meth:`Relay.requeue_unconsumed`): a worker commits after its ledger
        write, so a job still queued then had its message skipped or lost by the broker.
        Duplicates are harmless (a worker only starts queued jobs).
        """
        st = self.config.stage(stage)
        with self._tx() as conn:
            rows = conn.execute(
                select(jobs.c.file, jobs.c.input_path)
                .where(
                    jobs.c.stage == stage,
                    jobs.c.version == st.version,
                    jobs.c.state == State.QUEUED.value,
                    jobs.c.updated < published_before,
                )
                .order_by(jobs.c.id)
                .limit(limit)
            ).all()
            if not rows:
                return []
            recent = {  # keys with a message not yet published or published since
                r.key
                for r in conn.execute(
                    select(outbox.c.key).where(
                        outbox.c.topic == st.input,
                        outbox.c.key.in_([r.file for r in rows]),
                        or_(
                            outbox.c.published_at.is_(None),
                            outbox.c.published_at >= published_before,
                        ),
                    )
                )
            }
            now = _now()
            out = []
            for r in rows:
                if r.file in recent:
                    continue
                key = JobKey(r.file, stage, st.version)
                self._enqueue(conn, st.input, key, {"input": r.input_path}, now)
                out.append(r.file)
            return out

    def unpublished(self, limit: int = 500) -> list[OutboxMessage]:
        """Outbox rows not yet published, oldest first."""
        q = select(outbox).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [
                OutboxMessage(r.id, r.message_id, r.topic, r.key, dict(r.payload))
                for r in conn.execute(q)
            ]

    def mark_published(self, ids: Sequence[int]) -> None:
        """Mark outbox rows as published (after the broker acknowledged them)."""
        if not ids:
            return
        with self._tx() as conn:
            conn.execute(
                update(outbox).where(outbox.c.id.in_(list(ids))).values(published_at=_now())
            )

    # ---- operator actions ----------------------------------------------------------------

    def retry(
        self,
        *,
        file: str | None = None,
        stage: str | None = None,
        who: str = "operator",
        states: Iterable[State] | None = None,
        files: Iterable[str] | None = None,
        note: str | None = None,
        expect: Callable[[Sequence[Row[Any]]], None] | None = None,
    ) -> int:
        """Manually re-queue failed or dead jobs (attempts start again at 0), audited.

        ``states`` narrows the replay to failed or dead jobs only, ``files`` to a set of
        files (e.g. those of one run); ``note`` (why) goes to the audit row. ``expect`` sees
        the selected (locked) job rows first, in the same transaction; if it raises,
        nothing changes (e.g. the selection is not the one an operator confirmed).
        """
        allowed = {State.FAILED, State.DEAD}
        chosen = allowed if states is None else set(states)
        if not chosen or not chosen <= allowed:
            bad = ", ".join(sorted(s.value for s in chosen - allowed)) or "none"
            raise PipelineError(f"only failed or dead jobs can be retried (asked: {bad})")
        where: list[ColumnElement[bool]] = [jobs.c.state.in_(sorted(s.value for s in chosen))]
        if file is not None:
            where.append(jobs.c.file == file)
        if files is not None:
            where.append(jobs.c.file.in_(sorted(set(files))))
        if stage is not None:
            where.append(jobs.c.stage == stage)
        with self._tx() as conn:
            now = _now()
            rows = conn.execute(select(jobs).where(*where).with_for_update()).all()
            if expect is not None:
                expect(rows)
            for row in rows:
                new, _ = self._apply(conn, row, Retry(manual=True), now)
                self._audit(conn, now, who, "retry", row, new.state, note)
            return len(rows)

    def reset(
        self, file: str, stage: str, *, who: str = "operator", note: str | None = None
    ) -> int:
        """Reset a file at ``stage`` and every stage after it, then re-queue ``stage``; audited."""
        chain = [s.name for s in self.config.stages]
        if stage not in chain:
            self.config.stage(stage)  # raises ConfigError naming the stages
        downstream = chain[chain.index(stage) :]
        count = 0
        with self._tx() as conn:
            now = _now()
            for name in downstream:
                st = self.config.stage(name)
                row = self._lock(conn, JobKey(file, name, st.version))
                if row is None:
                    continue
                new, _ = self._apply(conn, row, Reset(note or f"reset by {who}"), now)
                self._audit(conn, now, who, "reset", row, new.state, note)
                count += 1
            if count == 0:
                raise PipelineError(
                    f"file {file!r}: no job at stage {stage!r} or after it to reset"
                )
            first = self._lock(conn, JobKey(file, stage, self.config.stage(stage).version))
            if first is not None:
                self._apply(conn, first, Submit(), now)
        return count

    def _audit(
        self,
        conn: Connection,
        now: dt.datetime,
        who: str,
        action: str,
        row: Row[Any],
        to: State,
        note: str | None,
    ) -> None:
        conn.execute(
            insert(audit).values(
                at=now,
                who=who,
                action=action,
                file=row.file,
                stage=row.stage,
                version=row.version,
                from_state=row.state,
                to_state=to.value,
                note=note,
            )
        )

    # ---- read side -----------------------------------------------------------------------

    def job(self, key: JobKey) -> JobState | None:
        """Current state of one job (None if unknown)."""
        q = select(jobs).where(
            jobs.c.file == key.file, jobs.c.stage == key.stage, jobs.c.version == key.version
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return None if row is None else _state_of(row)

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of jobs per stage and state: ``{stage: {state: n}}``, stages in chain order."""
        q = select(jobs.c.stage, jobs.c.state, func.count()).group_by(jobs.c.stage, jobs.c.state)
        out: dict[str, dict[str, int]] = {s.name: {} for s in self.config.stages}
        with self.engine.connect() as conn:
            for stage, state, n in conn.execute(q):
                out.setdefault(stage, {})[state] = int(n)
        return out

    def failures(self) -> list[dict[str, Any]]:
        """Jobs in failed, retrying or dead state with their last reason and attempt count."""
        bad = [State.FAILED.value, State.RETRYING.value, State.DEAD.value]
        q = select(jobs).where(jobs.c.state.in_(bad)).order_by(jobs.c.stage, jobs.c.file)
        with self.engine.connect() as conn:
            return [_job_dict(r) for r in conn.execute(q)]

    def jobs_of(self, files: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Job rows (file, stage, version, state, attempts, reason, paths, updated) by file."""
        q = select(jobs).order_by(jobs.c.file, jobs.c.id)
        if files is not None:
            q = q.where(jobs.c.file.in_(sorted(set(files))))
        with self.engine.connect() as conn:
            return [_job_dict(r, paths=True) for r in conn.execute(q)]

    def audit_log(self, file: str | None = None) -> list[dict[str, Any]]:
        """Operator actions (who, when, what, from/to state, why), oldest first."""
        q = select(audit).order_by(audit.c.id)
        if file is not None:
            q = q.where(audit.c.file == file)
        with self.engine.connect() as conn:
            return [{**r._mapping, "at": _aware(r.at)} for r in conn.execute(q)]

    def attempts_of(self, key: JobKey) -> list[dict[str, Any]]:
        """Every attempt of one job, oldest first."""
        q = (
            select(attempts)
            .join(jobs, attempts.c.job_id == jobs.c.id)
            .where(
                jobs.c.file == key.file, jobs.c.stage == key.stage, jobs.c.version == key.version
            )
            .order_by(attempts.c.number, attempts.c.id)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
