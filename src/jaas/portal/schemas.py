"""Response and request schemas of the portal API (pydantic), grouped by family.

Families: jobs (JobOut, JobPage), files (AttemptOut, AuditOut, FileHistory), summary
(Summary), alerts (AlertOut), actions (RetryRequest, RetryPreview, RetryResult), live
stream (Frame), errors (ErrorOut), tokens (TokenOut).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AlertOut",
    "AttemptOut",
    "AuditOut",
    "ErrorOut",
    "FileHistory",
    "Frame",
    "JobOut",
    "JobPage",
    "JobSort",
    "RetryPreview",
    "RetryRequest",
    "RetryResult",
    "Scope",
    "SortOrder",
    "Summary",
    "TokenOut",
    "WhoAmI",
]

FRAME_VERSION: Literal[1] = 1
RetryState = Literal["failed", "dead"]


class Scope(enum.StrEnum):
    """What a token may do; each scope includes the ones before it."""

    READ = "read"
    OPERATE = "operate"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)


class JobSort(enum.StrEnum):
    """Sort keys of the jobs list (ties broken by job id, i.e. creation order)."""

    FILE = "file"
    STAGE = "stage"
    STATE = "state"
    ATTEMPTS = "attempts"
    UPDATED = "updated"


class SortOrder(enum.StrEnum):
    ASC = "asc"
    DESC = "desc"


class ErrorOut(BaseModel):
    """Every 4xx answer: one line saying what was wrong."""

    detail: str


class JobOut(BaseModel):
    file: str
    stage: str
    version: str
    state: str
    attempts: int
    reason: str | None = None
    input_path: str | None = None
    output_path: str | None = None
    updated: dt.datetime | None = None


class JobPage(BaseModel):
    """One page of jobs; pass ``next`` back as ``after`` for the next page (keyset)."""

    items: list[JobOut]
    next: str | None = Field(None, description="opaque cursor of the next page, null at the end")
    total: int = Field(description="number of jobs matching the filter")


class AttemptOut(BaseModel):
    number: int
    worker: str | None = None
    started: dt.datetime
    ended: dt.datetime | None = None
    exit_code: int | None = None
    log_path: str | None = None
    reason: str | None = None
    classification: str | None = None


class AuditOut(BaseModel):
    at: dt.datetime | None
    who: str
    action: str
    file: str
    stage: str
    version: str
    from_state: str
    to_state: str
    note: str | None = None


class StageJobs(BaseModel):
    job: JobOut
    attempts: list[AttemptOut]


class FileHistory(BaseModel):
    """A file's jobs (chain order) with every attempt, and the operator actions on it."""

    file: str
    jobs: list[StageJobs]
    audit: list[AuditOut]


class Summary(BaseModel):
    """Jobs by stage and state (stages in chain order) and active alerts by severity."""

    jobs: dict[str, dict[str, int]]
    alerts: dict[str, int]


class AlertOut(BaseModel):
    id: int
    rule: str
    subject: str
    severity: str
    message: str
    value: float | None = None
    raised: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    resolved: dt.datetime | None = None


def _both() -> list[RetryState]:
    return ["failed", "dead"]


class RetryRequest(BaseModel):
    """Which failed/dead jobs to re-queue; without ``plan`` only a preview is returned."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = Field(None, max_length=512)
    stage: str | None = Field(None, max_length=64)
    states: list[RetryState] = Field(default_factory=_both)
    note: str | None = Field(None, max_length=500, description="why (goes to the audit)")
    plan: str | None = Field(None, description="the preview's plan id: confirm exactly that")


class RetryPreview(BaseModel):
    """Exactly which jobs a retry would re-queue; confirm with ``plan``."""

    plan: str
    jobs: list[JobOut]


class RetryResult(BaseModel):
    plan: str
    retried: int
    who: str


class Frame(BaseModel):
    """One live-stream frame (SSE ``data:``); ``id`` is also the SSE event id.

    Types: ``snapshot`` (full summary and active alerts), ``summary.diff`` (changed job
    counts, 0 for vanished states), ``alerts`` (the active alerts after a change).
    """

    v: Literal[1] = FRAME_VERSION
    id: int
    type: Literal["snapshot", "summary.diff", "alerts"]
    at: dt.datetime
    data: dict[str, Any]


class WhoAmI(BaseModel):
    """The caller as the server sees it (the SPA shows action buttons from ``scope``)."""

    name: str
    scope: Scope


class TokenOut(BaseModel):
    id: int
    name: str
    scope: Scope
    created: dt.datetime | None
    revoked: dt.datetime | None = None
