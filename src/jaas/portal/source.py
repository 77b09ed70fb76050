"""The portal's only window on the pipeline: an adapter over the ledger's public methods.

Everything the API shows comes from :class:`LedgerSource`; nothing else in the portal
reads ledger tables. It uses ``Ledger.counts()``, ``jobs_of()``, ``attempts_of()``,
``audit_log()``, ``retry()`` and ``AlertStore``; filtering, sorting and keyset paging of
the jobs list are done here in memory for now. Swap in the typed ledger read models
(``jaas.kup.readmodels``, keyset-paged SQL) here once they land: the API does not change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from jaas.errors import ConfigError, NotInCatalogError
from jaas.kup.alerts import AlertStore
from jaas.kup.ledger import Ledger
from jaas.kup.states import JobKey, State
from jaas.portal.schemas import (
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


class JobFilter:
    """Server-side filter of the jobs list (exact stage/state, substring of the file name)."""

    def __init__(
        self, stage: str | None = None, state: str | None = None, file: str | None = None
    ) -> None:
        if state is not None and state not in _STATES:
            raise ConfigError(f"unknown state {state!r}; one of {', '.join(sorted(_STATES))}")
        self.stage, self.state, self.file = stage, state, file

    def __call__(self, job: dict[str, Any]) -> bool:
        return (
            (self.stage is None or job["stage"] == self.stage)
            and (self.state is None or job["state"] == self.state)
            and (self.file is None or self.file in job["file"])
        )


def _sort_key(sort: JobSort) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def key(j: dict[str, Any]) -> tuple[Any, ...]:
        v = j[sort.value]
        if sort is JobSort.UPDATED:
            v = v.isoformat() if v is not None else ""
        return (v, j["file"], j["stage"], j["version"])

    return key


def _encode(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _decode(cursor: str) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ConfigError("invalid cursor 'after': pass back the 'next' of a page") from None
    if not isinstance(value, list) or len(value) != 4:
        raise ConfigError("invalid cursor 'after': pass back the 'next' of a page")
    return tuple(value)


def plan_id(jobs: list[JobOut]) -> str:
    """A short digest of exactly which jobs (and their states) an action would change."""
    text = "\n".join(f"{j.file}\t{j.stage}\t{j.version}\t{j.state}" for j in jobs)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class LedgerSource:
    """Read models and actions of the portal, over one :class:`Ledger`."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.alert_store = AlertStore(ledger.engine)

    def summary(self) -> Summary:
        return Summary(jobs=self.ledger.counts(), alerts=self.alert_store.counts())

    def alerts(self, active: bool = True, limit: int = 100) -> list[AlertOut]:
        rows = self.alert_store.active() if active else self.alert_store.recent(limit=limit)
        return [AlertOut.model_validate(r) for r in rows[:limit]]

    def jobs(
        self,
        flt: JobFilter,
        *,
        sort: JobSort = JobSort.FILE,
        order: SortOrder = SortOrder.ASC,
        limit: int = 50,
        after: str | None = None,
    ) -> JobPage:
        rows = [j for j in self.ledger.jobs_of() if flt(j)]
        key = _sort_key(sort)
        desc = order is SortOrder.DESC
        rows.sort(key=key, reverse=desc)
        total = len(rows)
        if after is not None:
            cursor = _decode(after)
            try:
                rows = [j for j in rows if (key(j) < cursor if desc else key(j) > cursor)]
            except TypeError:
                raise ConfigError(f"cursor 'after' does not fit sort={sort.value}") from None
        page = rows[:limit]
        nxt = _encode(key(page[-1])) if len(rows) > limit else None
        return JobPage(items=[JobOut.model_validate(j) for j in page], next=nxt, total=total)

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
                    AttemptOut.model_validate(a)
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
        chosen = set(states)
        jobs = [
            JobOut.model_validate(j)
            for j in self.ledger.jobs_of(None if file is None else [file])
            if j["state"] in chosen and (stage is None or j["stage"] == stage)
        ]
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
    ) -> int:
        return self.ledger.retry(
            file=file, stage=stage, states=[State(s) for s in states], who=who, note=note
        )
