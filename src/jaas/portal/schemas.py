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

from jaas.kup.snapshot import PartitionLag

# the file page shows this much of each attempt's log
LOG_TAIL_LINES = 20
LOG_TAIL_BYTES = 8192

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
    log_tail: str | None = Field(
        default=None,
        description=f"the last lines of the attempt's log (at most {LOG_TAIL_LINES} lines, "
        f"{LOG_TAIL_BYTES} bytes); null when the log is not readable from the portal",
    )
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
    counts, 0 for vanished states), ``alerts`` (the active alerts after a change),
    ``quality`` (the last stage published more files: ask ``/api/quality`` again).
    """

    v: Literal[1] = FRAME_VERSION
    id: int
    type: Literal["snapshot", "summary.diff", "alerts", "quality"]
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


# ---- dashboard history (charts), runs, alert handling, reset/replay, transfers -------------


class LagOut(BaseModel):
    """Consumer lag of one stage's group now: messages, seconds behind, trend, Burrow status."""

    stage: str
    lag: int | None = Field(description="messages not yet consumed (null: no broker data)")
    seconds_behind: float | None = Field(
        description="lag / recent consumption rate (null: nothing consumed lately)"
    )
    trend: int | None = Field(description="change of the lag over the history window")
    status: str | None = Field(description="Burrow status: OK, WARN, ERR, STALL, STOP, REWIND")


class StageSeries(BaseModel):
    """One stage's history rows as columns (oldest first), for charts."""

    stage: str
    at: list[float] = Field(description="UNIX seconds")
    files_per_min: list[float]
    lag: list[int | None]
    done: list[int]


class BrokerOut(BaseModel):
    state: Literal["up", "down", "unknown"]
    detail: str


class DashboardHistory(BaseModel):
    """Throughput and lag per stage over the window, the lag now, the broker's state."""

    minutes: int
    stages: list[StageSeries]
    lag: list[LagOut]
    broker: BrokerOut


class RunStageOut(BaseModel):
    stage: str
    done: int
    total: int
    percent: float


class RunOut(BaseModel):
    """Completeness of one run per stage, how far behind the newest RAW, its manifest."""

    run: int
    files: int
    stages: list[RunStageOut]
    behind_seconds: float = Field(
        description="newest RAW's arrival minus the oldest unfinished file's arrival (0: done)"
    )
    manifest: Literal["matched", "mismatched", "incomplete", "none"]
    manifest_detail: str | None = None
    text: str = Field(description="one line, e.g. 'run 12: ESD 80 %, index 75 %, 2 h behind'")


class RuleOut(BaseModel):
    name: str
    description: str
    thresholds: dict[str, float]


class AlertInstance(AlertOut):
    """An alert with its handling: acknowledged (by whom, when, why) and silenced until."""

    acked_by: str | None = None
    acked_at: dt.datetime | None = None
    ack_note: str | None = None
    silenced_until: dt.datetime | None = None


class AckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=500)


class SilenceRequest(BaseModel):
    """Silence alerts of one entity (stage, group, run) for a while; ``rule`` null: every rule."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=255)
    rule: str | None = Field(None, max_length=64)
    minutes: int = Field(ge=1, le=7 * 24 * 60)
    note: str | None = Field(None, max_length=500)


class AlertActionOut(BaseModel):
    """One audited alert action."""

    id: int
    at: dt.datetime
    who: str
    action: Literal["ack", "silence"]
    alert_id: int | None = None
    rule: str | None = None
    subject: str
    until: dt.datetime | None = None
    note: str | None = None


class ResetRequest(BaseModel):
    """Reset the selected files at ``stage`` and every stage after it; no ``plan``: preview."""

    model_config = ConfigDict(extra="forbid")

    files: list[str] = Field(min_length=1, max_length=1000)
    stage: str = Field(min_length=1, max_length=64)
    note: str | None = Field(None, max_length=500)
    plan: str | None = None


class ReplayRequest(RetryRequest):
    """Re-queue failed/dead jobs by query: a run and/or stage (and file); no ``plan``: preview."""

    run: int | None = Field(None, ge=0)


class ActionPreview(BaseModel):
    """Exactly which jobs change and which downstream products are remade; confirm with plan."""

    action: Literal["reset", "replay"]
    plan: str
    jobs: list[JobOut]
    products: list[str] = Field(description="output paths that will be made again")


class ItemResult(BaseModel):
    file: str
    stage: str
    version: str
    from_state: str
    to_state: str


class ActionResult(BaseModel):
    action: Literal["reset", "replay"]
    plan: str
    who: str
    changed: int
    items: list[ItemResult]


class ReplicaOut(BaseModel):
    file_id: int
    lfn: str
    site: str
    status: str
    checksum: str | None = None
    verified: dt.datetime | None = None
    route: str


class TransferRunOut(BaseModel):
    run: int
    safe: bool
    late: bool
    summary: str


class TransfersOut(BaseModel):
    """The transfer layer's read models (``configured`` false: no transfer tables here)."""

    configured: bool
    runs: list[TransferRunOut]
    replicas: list[ReplicaOut]


__all__ += [
    "AckRequest",
    "ActionPreview",
    "ActionResult",
    "AlertActionOut",
    "AlertInstance",
    "BrokerOut",
    "DashboardHistory",
    "ItemResult",
    "LagOut",
    "ReplayRequest",
    "ReplicaOut",
    "ResetRequest",
    "RuleOut",
    "RunOut",
    "RunStageOut",
    "SilenceRequest",
    "StageSeries",
    "TransferRunOut",
    "TransfersOut",
]


class QualityOut(BaseModel):
    """Live data quality of the published keep-up dataset: rates per hour (UTC hours)."""

    dataset: str
    available: bool = Field(description="false: the dataset is not in the catalog yet")
    detail: str | None = None
    files: int = 0
    hours: list[float] = Field(default_factory=list, description="UNIX s of each hour's start")
    triggers: list[int] = Field(default_factory=list, description="events per hour")
    muons: list[int] = Field(default_factory=list, description="CD muons (cls == 1) per hour")
    ibd: list[int] = Field(default_factory=list, description="IBD candidates (prompt) per hour")
    covered_s: list[float] = Field(
        default_factory=list,
        description="seconds of each hour covered by the dataset's files (3600: a whole hour; "
        "less: the live hour or a gap), to turn the counts into rates",
    )


__all__ += ["QualityOut"]


class LiveOut(BaseModel):
    """The broker and every partition's lag now (``broker.state`` unknown: no pipeline)."""

    broker: BrokerOut
    topics: dict[str, int] = Field(default_factory=dict, description="topic -> partitions")
    partitions: list[PartitionLag] = Field(
        default_factory=list, description="every partition of every stage's consumer group"
    )


__all__ += ["LiveOut"]
