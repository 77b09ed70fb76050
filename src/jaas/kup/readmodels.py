"""Read models of the ledger: typed, paged queries for the monitor, alerts, CLI and portal.

Only :mod:`jaas.kup.ledger` and this module touch the ledger's tables. Every function
takes the ledger's :class:`~sqlalchemy.Engine` and returns frozen dataclasses; job lists
are paged by keyset (``after`` = the last job id of the previous page), so page N costs
the same as page 1 on a ledger of 10^5 jobs.

Example:
    >>> rm = ReadModels(ledger.engine)                       # doctest: +SKIP
    >>> page = rm.jobs(stage="rtraw", state="dead", limit=50)  # doctest: +SKIP
    >>> more = rm.jobs(stage="rtraw", state="dead", after=page.next_after)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Integer, and_, case, cast, func, literal, select, tuple_
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from jaas.errors import ConfigError
from jaas.kup.ledger import attempts, audit, jobs, outbox
from jaas.kup.states import State

__all__ = [
    "AttemptRow",
    "AuditRow",
    "FailureRate",
    "FileHistory",
    "JobHistory",
    "JobPage",
    "JobRow",
    "MessageRow",
    "ReadModels",
    "RunProgress",
    "SortedJobPage",
    "StageActivity",
]

MAX_PAGE = 1000
# columns the sorted jobs list can be ordered by (ties broken by id: creation order)
JOB_SORTS = ("id", "file", "stage", "state", "attempts", "updated")


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


@dataclass(frozen=True)
class JobRow:
    """One job: its key, state, attempts so far, last reason, paths, times."""

    id: int
    file: str
    stage: str
    version: str
    state: str
    attempts: int
    reason: str | None
    input_path: str | None
    output_path: str | None
    owner: str | None
    retry_at: dt.datetime | None
    created: dt.datetime
    updated: dt.datetime


@dataclass(frozen=True)
class JobPage:
    """A page of jobs ordered by id; ``next_after`` is None on the last page."""

    items: list[JobRow]
    next_after: int | None


@dataclass(frozen=True)
class SortedJobPage:
    """A page of jobs in ``(sort column, id)`` order; ``next_key`` (the last row's sort value
    and id) is None on the last page; ``total`` counts every job matching the filter."""

    items: list[JobRow]
    next_key: tuple[Any, int] | None
    total: int | None


@dataclass(frozen=True)
class AttemptRow:
    """One attempt: number, worker (``host:pid:stage``), start/end, exit code, error class
    (``transient``/``deterministic``/None), reason, log."""

    id: int
    number: int
    worker: str | None
    started: dt.datetime
    ended: dt.datetime | None
    exit_code: int | None
    error_class: str | None
    reason: str | None
    log_path: str | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return None if self.ended is None else (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class MessageRow:
    """An outbox message about the file: topic, payload, when written and published."""

    message_id: str
    topic: str
    payload: dict[str, Any]
    created: dt.datetime
    published_at: dt.datetime | None


@dataclass(frozen=True)
class AuditRow:
    """An operator action on the file."""

    at: dt.datetime
    who: str
    action: str
    stage: str
    version: str
    from_state: str
    to_state: str
    note: str | None


@dataclass(frozen=True)
class JobHistory:
    """A job and every attempt of it, oldest first."""

    job: JobRow
    attempts: list[AttemptRow]


@dataclass(frozen=True)
class FileHistory:
    """Everything the ledger knows about one file, in chain order."""

    file: str
    jobs: list[JobHistory]
    messages: list[MessageRow]
    audit: list[AuditRow]


@dataclass(frozen=True)
class FailureRate:
    """Attempts of a stage that ended since a time, and how many of them failed."""

    ended: int
    failed: int

    @property
    def rate(self) -> float | None:
        """Failed share (None: nothing ended)."""
        return self.failed / self.ended if self.ended else None


@dataclass
class StageActivity:
    """What the monitor needs of one stage from the ledger."""

    stage: str
    counts: dict[str, int] = field(default_factory=dict)
    failures: FailureRate = field(default_factory=lambda: FailureRate(0, 0))
    done_since: int = 0
    last_failure: str | None = None
    running_started: list[dt.datetime] = field(default_factory=list)
    oldest_queued: dt.datetime | None = None
    first_start: dt.datetime | None = None
    last_start: dt.datetime | None = None


def _ok() -> ColumnElement[bool]:
    return and_(attempts.c.exit_code == 0, attempts.c.classification.is_(None))


def _job(r: Row[Any]) -> JobRow:
    return JobRow(
        r.id,
        r.file,
        r.stage,
        r.version,
        r.state,
        r.attempts,
        r.last_reason,
        r.input_path,
        r.output_path,
        r.owner,
        _aware(r.retry_at),
        _aware(r.created) or r.created,
        _aware(r.updated) or r.updated,
    )


def _attempt(r: Row[Any]) -> AttemptRow:
    return AttemptRow(
        r.id,
        r.number,
        r.worker,
        _aware(r.started) or r.started,
        _aware(r.ended),
        r.exit_code,
        r.classification,
        r.reason,
        r.log_path,
    )


class ReadModels:
    """Queries over one ledger database.

    Args:
        engine: the ledger's engine (``Ledger.engine``).
        stages: stage names in chain order (stages with no job yet still appear in counts).
    """

    def __init__(self, engine: Engine, stages: Sequence[str] = ()) -> None:
        self.engine = engine
        self.stages = list(stages)

    # ---- aggregates ------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per stage and state: ``{stage: {state: n}}``."""
        q = select(jobs.c.stage, jobs.c.state, func.count()).group_by(jobs.c.stage, jobs.c.state)
        out: dict[str, dict[str, int]] = {s: {} for s in self.stages}
        with self.engine.connect() as conn:
            for stage, state, n in conn.execute(q):
                out.setdefault(stage, {})[state] = int(n)
        return out

    def throughput(self, since: dt.datetime) -> dict[str, int]:
        """Attempts per stage that succeeded since ``since``."""
        j = attempts.join(jobs, attempts.c.job_id == jobs.c.id)
        q = (
            select(jobs.c.stage, func.count())
            .select_from(j)
            .where(attempts.c.ended >= since, _ok())
            .group_by(jobs.c.stage)
        )
        with self.engine.connect() as conn:
            return {stage: int(n) for stage, n in conn.execute(q)}

    def failure_rate(self, since: dt.datetime) -> dict[str, FailureRate]:
        """Attempts per stage that ended since ``since``, and the failed ones among them."""
        j = attempts.join(jobs, attempts.c.job_id == jobs.c.id)
        q = (
            select(jobs.c.stage, func.count(), func.sum(_ok().cast(Integer)))
            .select_from(j)
            .where(attempts.c.ended >= since)
            .group_by(jobs.c.stage)
        )
        with self.engine.connect() as conn:
            return {s: FailureRate(int(n), int(n) - int(ok or 0)) for s, n, ok in conn.execute(q)}

    def activity(
        self, now: dt.datetime, failure_since: dt.datetime, throughput_since: dt.datetime
    ) -> dict[str, StageActivity]:
        """Per stage: counts, failure rate, successes, last failure, running attempts' starts,
        the oldest queued job, the first and last attempt start."""
        out = {s: StageActivity(s, counts=c) for s, c in self.counts().items()}

        def get(stage: str) -> StageActivity:
            return out.setdefault(stage, StageActivity(stage))

        for stage, fr in self.failure_rate(failure_since).items():
            get(stage).failures = fr
        for stage, n in self.throughput(throughput_since).items():
            get(stage).done_since = n
        j = attempts.join(jobs, attempts.c.job_id == jobs.c.id)
        with self.engine.connect() as conn:
            q = select(jobs.c.stage, func.min(attempts.c.started), func.max(attempts.c.started))
            for stage, first, last in conn.execute(q.select_from(j).group_by(jobs.c.stage)):
                get(stage).first_start, get(stage).last_start = _aware(first), _aware(last)
            running = (
                select(jobs.c.stage, attempts.c.started)
                .select_from(j)
                .where(jobs.c.state == State.RUNNING.value, attempts.c.ended.is_(None))
            )
            for stage, started in conn.execute(running):
                if (t := _aware(started)) is not None:
                    get(stage).running_started.append(t)
            queued = (
                select(jobs.c.stage, func.min(jobs.c.updated))
                .where(jobs.c.state == State.QUEUED.value)
                .group_by(jobs.c.stage)
            )
            for stage, oldest in conn.execute(queued):
                get(stage).oldest_queued = _aware(oldest)
            last_fail = (
                select(jobs.c.stage, attempts.c.reason, attempts.c.ended, attempts.c.id)
                .select_from(j)
                .where(attempts.c.ended >= failure_since, ~_ok())
                .order_by(attempts.c.ended.desc(), attempts.c.id.desc())
            )
            for stage, reason, *_ in conn.execute(last_fail):
                if get(stage).last_failure is None:
                    get(stage).last_failure = reason or "no reason recorded"
        return out

    # ---- lists and histories ---------------------------------------------------------------

    def jobs(
        self,
        *,
        stage: str | None = None,
        state: str | State | None = None,
        file: str | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> JobPage:
        """Jobs ordered by id, optionally of one stage, state or file, ``limit`` per page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ConfigError(f"page size {limit}: expected 1..{MAX_PAGE}")
        q = select(jobs).order_by(jobs.c.id).limit(limit + 1)
        if stage is not None:
            q = q.where(jobs.c.stage == stage)
        if state is not None:
            q = q.where(jobs.c.state == State(state).value)
        if file is not None:
            q = q.where(jobs.c.file == file)
        if after is not None:
            q = q.where(jobs.c.id > after)
        with self.engine.connect() as conn:
            rows = [_job(r) for r in conn.execute(q)]
        more = len(rows) > limit
        rows = rows[:limit]
        return JobPage(rows, rows[-1].id if more else None)

    def jobs_sorted(
        self,
        *,
        stage: str | None = None,
        state: str | State | None = None,
        file_contains: str | None = None,
        sort: str = "id",
        descending: bool = False,
        after: tuple[Any, int] | None = None,
        limit: int = 100,
        count: bool = True,
    ) -> SortedJobPage:
        """Jobs filtered by stage, state and a substring of the file, ordered by ``sort``
        then id, keyset-paged: ``after`` is the ``next_key`` of the previous page.

        ``count=False`` skips the total (e.g. for every page after the first).
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ConfigError(f"page size {limit}: expected 1..{MAX_PAGE}")
        if sort not in JOB_SORTS:
            raise ConfigError(f"cannot sort jobs by {sort!r}; one of {', '.join(JOB_SORTS)}")
        where: list[ColumnElement[bool]] = []
        if stage is not None:
            where.append(jobs.c.stage == stage)
        if state is not None:
            where.append(jobs.c.state == State(state).value)
        if file_contains is not None:
            where.append(jobs.c.file.contains(file_contains, autoescape=True))
        col = jobs.c[sort]
        key = tuple_(col, jobs.c.id)
        q = select(jobs).where(*where).limit(limit + 1)
        q = q.order_by(col.desc(), jobs.c.id.desc()) if descending else q.order_by(col, jobs.c.id)
        if after is not None:
            start = tuple_(literal(after[0], col.type), literal(after[1], Integer))
            q = q.where(key < start if descending else key > start)
        with self.engine.connect() as conn:
            rows = [_job(r) for r in conn.execute(q)]
            n = select(func.count()).select_from(jobs).where(*where)
            total = int(conn.execute(n).scalar_one()) if count else None
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        return SortedJobPage(rows, None if last is None else (getattr(last, sort), last.id), total)

    def file_history(self, file: str) -> FileHistory | None:
        """Jobs, attempts, messages and operator actions of ``file`` (None: unknown file)."""
        with self.engine.connect() as conn:
            job_rows = [_job(r) for r in conn.execute(select(jobs).where(jobs.c.file == file))]
            if not job_rows:
                return None
            q = (
                select(attempts)
                .where(attempts.c.job_id.in_([j.id for j in job_rows]))
                .order_by(attempts.c.number, attempts.c.id)
            )
            by_job: dict[int, list[AttemptRow]] = {j.id: [] for j in job_rows}
            for r in conn.execute(q):
                by_job[r.job_id].append(_attempt(r))
            msgs = [
                MessageRow(
                    r.message_id,
                    r.topic,
                    dict(r.payload),
                    _aware(r.created) or r.created,
                    _aware(r.published_at),
                )
                for r in conn.execute(
                    select(outbox).where(outbox.c.key == file).order_by(outbox.c.id)
                )
            ]
            acts = [
                AuditRow(
                    _aware(r.at) or r.at,
                    r.who,
                    r.action,
                    r.stage,
                    r.version,
                    r.from_state,
                    r.to_state,
                    r.note,
                )
                for r in conn.execute(
                    select(audit).where(audit.c.file == file).order_by(audit.c.id)
                )
            ]
        order = {s: i for i, s in enumerate(self.stages)}
        job_rows.sort(key=lambda j: (order.get(j.stage, len(order)), j.stage, j.version, j.id))
        return FileHistory(file, [JobHistory(j, by_job[j.id]) for j in job_rows], msgs, acts)


def job_arrivals(engine: Engine) -> list[tuple[str, str, str, str, dt.datetime]]:
    """``(file, stage, version, state, created)`` of every job (per-run completeness)."""
    q = select(jobs.c.file, jobs.c.stage, jobs.c.version, jobs.c.state, jobs.c.created)
    with engine.connect() as conn:
        return [(f, s, v, st, _aware(c) or c) for f, s, v, st, c in conn.execute(q)]


@dataclass(frozen=True)
class RunProgress:
    """One run's files (jobs of the first stage), done files per stage (current versions),
    the newest arrival and the oldest arrival of a file not yet done at the last stage."""

    run: int
    files: int
    done: dict[str, int]
    newest: dt.datetime
    oldest_waiting: dt.datetime | None


def _run_number(engine: Engine) -> ColumnElement[Any]:
    """SQL for :func:`jaas.kup.manifest.run_of_file` (``run0*(\\d+)[_.-]``), else NULL."""
    f = jobs.c.file
    if engine.dialect.name == "postgresql":
        return cast(func.substring(f, r"^run0*([0-9]+)[_.-]"), Integer)
    # SQLite: 'run', a digit, digits, then one of _ . - ; CAST reads the leading digits
    rest = func.substr(f, 4)
    sep = func.substr(func.ltrim(rest, "0123456789"), 1, 1)
    return case((and_(f.op("GLOB")("run[0-9]*"), sep.in_(["_", ".", "-"])), cast(rest, Integer)))


def run_progress(engine: Engine, stages: Sequence[tuple[str, str]]) -> list[RunProgress]:
    """Per run (newest first), in one aggregate over the jobs of ``stages`` (``(name,
    current version)`` in chain order): what the portal's runs view shows.

    One pass over the jobs grouped by file (the ``(file, stage, version)`` key index),
    then by run; nothing per job leaves the database.
    """
    first, last = stages[0], stages[-1]

    def at(stage: tuple[str, str]) -> ColumnElement[bool]:
        return and_(jobs.c.stage == stage[0], jobs.c.version == stage[1])

    done = jobs.c.state == State.DONE.value
    per_file = (
        select(
            _run_number(engine).label("run"),
            func.max(case((at(first), jobs.c.created))).label("arrival"),
            func.max(case((and_(at(last), done), 1), else_=0)).label("last_done"),
            *(
                func.max(case((and_(at(s), done), 1), else_=0)).label(f"d{i}")
                for i, s in enumerate(stages)
            ),
        )
        .where(jobs.c.file.like("run%"))
        .group_by(jobs.c.file)
        .subquery()
    )
    c = per_file.c
    q = (
        select(
            c.run,
            func.count(c.arrival),
            func.max(c.arrival),
            func.min(case((c.last_done == 0, c.arrival))),
            *(func.sum(c[f"d{i}"]) for i in range(len(stages))),
        )
        .where(c.run.is_not(None))
        .group_by(c.run)
        .having(func.count(c.arrival) > 0)
        .order_by(c.run.desc())
    )
    out = []
    with engine.connect() as conn:
        for run, n, newest, waiting, *dones in conn.execute(q):
            out.append(
                RunProgress(
                    int(run),
                    int(n),
                    {s[0]: int(d or 0) for s, d in zip(stages, dones, strict=True)},
                    _aware(newest) or newest,
                    _aware(waiting),
                )
            )
    return out


__all__ += ["job_arrivals", "run_progress"]
