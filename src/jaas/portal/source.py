"""The portal's only window on the pipeline: an adapter over the ledger's public methods.

Everything the API shows comes from :class:`LedgerSource`; nothing else in the portal
reads ledger tables. It uses ``Ledger.counts()``, ``jobs_of()``, ``attempts_of()``,
``audit_log()``, ``retry()``, ``AlertStore`` and the typed read models
(:mod:`jaas.kup.readmodels`): the jobs list is filtered, sorted and keyset-paged in SQL
(cursor = the last row's sort value and job id), so page N of 10^5 jobs costs as page 1.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jaas.errors import ConfigError, NotInCatalogError, PipelineError
from jaas.kup.alerts import AlertStore
from jaas.kup.ledger import Ledger
from jaas.kup.readmodels import MAX_PAGE, ReadModels, RunProgress, SortedJobPage, run_progress
from jaas.kup.states import JobKey, State
from jaas.portal.cache import ChangeToken, ViewCache, cached
from jaas.portal.schemas import (
    LOG_TAIL_BYTES,
    LOG_TAIL_LINES,
    AlertOut,
    AttemptOut,
    AuditOut,
    FileHistory,
    JobOut,
    JobPage,
    JobSort,
    RetryPreview,
    SortOrder,
    StageJobs,
    Summary,
)

__all__ = ["JobFilter", "LedgerSource"]

_STATES = {s.value for s in State}


@dataclass(frozen=True)
class JobFilter:
    """Server-side filter of the jobs list (exact stage/state, substring of the file name).

    The file filter stays a substring (``LIKE '%x%'``, a scan of the jobs matching the
    other filters): operators type any part of a name (``run12``, ``_0042``, ``.raw``),
    which no B-tree index serves; its page and total are cached between ledger changes.
    """

    stage: str | None = None
    state: str | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in _STATES:
            raise ConfigError(f"unknown state {self.state!r}; one of {', '.join(sorted(_STATES))}")


_BAD_CURSOR = "invalid cursor 'after': pass back the 'next' of a page"


def _encode(key: tuple[Any, int]) -> str:
    value, job_id = key
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    return base64.urlsafe_b64encode(json.dumps([value, job_id]).encode()).decode().rstrip("=")


def _decode(cursor: str, sort: JobSort) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ConfigError(_BAD_CURSOR) from None
    if not isinstance(value, list) or len(value) != 2 or type(value[1]) is not int:
        raise ConfigError(_BAD_CURSOR)
    v, job_id = value
    try:
        if sort is JobSort.ATTEMPTS:
            if type(v) is not int:
                raise ValueError(v)
        elif not isinstance(v, str):
            raise ValueError(v)
        elif sort is JobSort.UPDATED:
            v = dt.datetime.fromisoformat(v)
    except ValueError:
        raise ConfigError(f"cursor 'after' does not fit sort={sort.value}") from None
    return v, job_id


def plan_id(jobs: Iterable[Any]) -> str:
    """A short digest of exactly which jobs (and their states) an action would change.

    ``jobs``: anything with ``file``, ``stage``, ``version`` and ``state`` (JobOut, rows).
    """
    keys = sorted((j.file, j.stage, j.version, j.state) for j in jobs)
    text = "\n".join("\t".join(k) for k in keys)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def log_tail(path: str | None) -> str | None:
    """The last ``LOG_TAIL_LINES`` lines of an attempt's log, read from its last
    ``LOG_TAIL_BYTES`` bytes (undecodable bytes replaced); None when there is no log or it
    cannot be read here (another host's disk, removed, not a regular file)."""
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            if not os.path.isfile(path):
                return None
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            data = fh.read(LOG_TAIL_BYTES)
    except OSError:
        return None
    lines = data.decode("utf-8", "replace").splitlines()
    if size > LOG_TAIL_BYTES and lines:
        lines = lines[1:]  # the first line read is cut
    return "\n".join(lines[-LOG_TAIL_LINES:])


class LedgerSource:
    """Read models and actions of the portal, over one :class:`Ledger`.

    The reads every client repeats (summary, alerts, job pages and totals, a file's
    history, run progress) go through ``cache`` (:class:`~jaas.portal.cache.ViewCache`,
    dropped when the database changes); actions call :meth:`changed`.
    """

    def __init__(self, ledger: Ledger, cache: ViewCache | None = None) -> None:
        self.ledger = ledger
        self.alert_store = AlertStore(ledger.engine)
        self.read = ReadModels(ledger.engine, [s.name for s in ledger.config.stages])
        self.cache = cache or ViewCache(ChangeToken(ledger.engine))

    def changed(self) -> None:
        """Drop the cached reads (this process changed the database)."""
        self.cache.clear()

    def close(self) -> None:
        self.cache.token.close()

    @cached
    def summary(self) -> Summary:
        return Summary(jobs=self.ledger.counts(), alerts=self.alert_store.counts())

    @cached
    def alerts(self, active: bool = True, limit: int = 100) -> list[AlertOut]:
        rows = self.alert_store.active() if active else self.alert_store.recent(limit=limit)
        return [AlertOut.model_validate(r) for r in rows[:limit]]

    @cached
    def run_progress(self) -> list[RunProgress]:
        """Per run its files and done files per stage (:func:`readmodels.run_progress`)."""
        stages = [(s.name, s.version) for s in self.ledger.config.stages]
        return run_progress(self.ledger.engine, stages)

    def _page(
        self,
        flt: JobFilter,
        sort: JobSort,
        order: SortOrder,
        limit: int,
        after: tuple[Any, int] | None,
        count: bool,
    ) -> SortedJobPage:
        return self.read.jobs_sorted(
            stage=flt.stage,
            state=flt.state,
            file_contains=flt.file,
            sort=sort.value,
            descending=order is SortOrder.DESC,
            after=after,
            limit=limit,
            count=count,
        )

    @cached
    def jobs(
        self,
        flt: JobFilter,
        *,
        sort: JobSort = JobSort.FILE,
        order: SortOrder = SortOrder.ASC,
        limit: int = 50,
        after: str | None = None,
    ) -> JobPage:
        """One page of the jobs list (keyset SQL of the ledger read models) and the total."""
        start = None if after is None else _decode(after, sort)
        page = self._page(flt, sort, order, limit, start, count=True)
        return JobPage(
            items=[JobOut.model_validate(j, from_attributes=True) for j in page.items],
            next=None if page.next_key is None else _encode(page.next_key),
            total=page.total or 0,
        )

    def iter_jobs(
        self, flt: JobFilter, *, sort: JobSort, order: SortOrder, chunk: int = MAX_PAGE
    ) -> Iterator[list[JobOut]]:
        """Every job matching ``flt`` in order, ``chunk`` per list (for the CSV export)."""
        after: tuple[Any, int] | None = None
        while True:
            page = self._page(flt, sort, order, chunk, after, count=False)
            yield [JobOut.model_validate(j, from_attributes=True) for j in page.items]
            if page.next_key is None:
                return
            after = page.next_key

    @cached
    def history(self, file: str) -> FileHistory:
        jobs = self.ledger.jobs_of([file])
        if not jobs:
            raise NotInCatalogError(f"file {file!r} is not in the ledger")
        order = {s.name: i for i, s in enumerate(self.ledger.config.stages)}
        jobs.sort(key=lambda j: (order.get(j["stage"], len(order)), j["stage"]))
        stages = [
            StageJobs(
                job=JobOut.model_validate(j),
                attempts=[
                    AttemptOut.model_validate({**a, "log_tail": log_tail(a.get("log_path"))})
                    for a in self.ledger.attempts_of(JobKey(file, j["stage"], j["version"]))
                ],
            )
            for j in jobs
        ]
        audit = [AuditOut.model_validate(a) for a in self.ledger.audit_log(file)]
        return FileHistory(file=file, jobs=stages, audit=audit)

    def retry_preview(
        self, *, file: str | None, stage: str | None, states: Sequence[str]
    ) -> RetryPreview:
        """Exactly the jobs a retry of this selection would change (SQL, by stage/state)."""
        jobs: list[JobOut] = []
        for state in sorted(set(states)):
            chunks = self.iter_jobs(
                JobFilter(stage, state, file), sort=JobSort.FILE, order=SortOrder.ASC
            )
            jobs += [j for chunk in chunks for j in chunk if file is None or j.file == file]
        jobs.sort(key=lambda j: (j.file, j.stage, j.version))
        return RetryPreview(plan=plan_id(jobs), jobs=jobs)

    def retry(
        self,
        *,
        file: str | None,
        stage: str | None,
        states: Sequence[str],
        who: str,
        note: str | None,
        plan: str | None = None,
    ) -> int:
        """Re-queue the selection; with ``plan``, only if the selection (checked in the same
        transaction as the change) is exactly the previewed one, else PipelineError."""

        def check(rows: Sequence[Any]) -> None:
            if plan is not None and plan_id(rows) != plan:
                raise PipelineError("the selection changed since the preview: preview again")

        try:
            return self.ledger.retry(
                file=file,
                stage=stage,
                states=[State(s) for s in states],
                who=who,
                note=note,
                expect=check,
            )
        finally:
            self.changed()
