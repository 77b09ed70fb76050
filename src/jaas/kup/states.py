"""Pure per-(file, stage, version) job state machine: events in, new state + instructions out.

No I/O happens here: the ledger (DB), the bus (Kafka) and the executors are drivers that
feed events into :func:`transition` and carry out the instructions it returns.

States::

    pending --submit--> queued --start--> running --succeed--> done
                          ^                  |  fail(transient) / timeout, attempts left
                          |                  v
                          +----retry---- retrying
    running --fail(deterministic) | fail/timeout with no attempt left--> dead
    queued | running | retrying --cancel--> failed
    failed | dead --retry (manual)--> queued          any state --reset--> pending
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from dataclasses import dataclass

from jaas.errors import PipelineError

__all__ = [
    "MAX_LOST",
    "Cancel",
    "Classification",
    "EmitNext",
    "Event",
    "Fail",
    "Instruction",
    "JobKey",
    "JobState",
    "KillJob",
    "Lost",
    "PublishStage",
    "Reset",
    "Retry",
    "RetryPolicy",
    "ScheduleRetry",
    "SendToDeadLetter",
    "Start",
    "State",
    "Submit",
    "Succeed",
    "Timeout",
    "transition",
]


class State(enum.StrEnum):
    """Where one (file, stage, version) job stands."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    RETRYING = "retrying"
    DEAD = "dead"


class Classification(enum.StrEnum):
    """Kind of a failure: a transient one is worth retrying, a deterministic one is not."""

    TRANSIENT = "transient"
    DETERMINISTIC = "deterministic"


@dataclass(frozen=True)
class JobKey:
    """Idempotency key of a job: one file, one stage, one software version."""

    file: str
    stage: str
    version: str

    def __str__(self) -> str:
        return f"file {self.file!r}, stage {self.stage!r}, version {self.version!r}"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: attempt n (1-based) that failed waits ``base * factor**(n-1)`` s.

    ``retries`` is the number of retries after the first attempt (so at most ``retries + 1``
    attempts); the delay is capped at ``max_delay`` seconds.
    """

    retries: int = 3
    base_delay: float = 10.0
    factor: float = 2.0
    max_delay: float = 600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.base_delay * self.factor ** max(0, attempt - 1)))


@dataclass(frozen=True)
class JobState:
    """Snapshot of one job: what the ledger stores per (file, stage, version)."""

    key: JobKey
    state: State = State.PENDING
    attempts: int = 0
    last_reason: str | None = None
    retry_at: dt.datetime | None = None
    lost: int = 0  # attempts lost with their worker: not charged to the retry budget

    @property
    def charged(self) -> int:
        """Attempts that count against the retry budget (real failures and the current)."""
        return self.attempts - self.lost


# ---- events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    """A message for this job was (or is about to be) published: pending -> queued."""


@dataclass(frozen=True)
class Start:
    """A worker took the job and launched an attempt: queued -> running."""


@dataclass(frozen=True)
class Succeed:
    """The running attempt finished well."""


@dataclass(frozen=True)
class Fail:
    """The running attempt failed, classified as transient or deterministic."""

    classification: Classification
    reason: str


@dataclass(frozen=True)
class Timeout:
    """The running attempt exceeded its time limit (a transient failure)."""

    seconds: float


@dataclass(frozen=True)
class Retry:
    """Retry now: a retrying job's backoff expired, or an operator retries a failed/dead job."""

    manual: bool = False


@dataclass(frozen=True)
class Reset:
    """An operator resets the job to pending (its products are to be redone)."""

    reason: str = "reset by operator"


@dataclass(frozen=True)
class Cancel:
    """An operator cancels a queued, running or retrying job."""

    reason: str = "cancelled by operator"


@dataclass(frozen=True)
class Lost:
    """The running attempt's worker died and the attempt left no result: a crash of ours,
    not a failure of the file. Retried at once, not charged to the budget (up to
    :data:`MAX_LOST` times: an attempt that keeps killing its worker is given up)."""

    reason: str = "worker lost"


MAX_LOST = 5

Event = Submit | Start | Succeed | Fail | Timeout | Retry | Reset | Cancel | Lost


# ---- instructions -----------------------------------------------------------------------


@dataclass(frozen=True)
class _ForJob:
    """An instruction about one job."""

    key: JobKey


@dataclass(frozen=True)
class PublishStage(_ForJob):
    """Publish a message asking this job's stage to process the file (through the outbox)."""


@dataclass(frozen=True)
class EmitNext(_ForJob):
    """The job is done: queue the next stage of the chain for this file (through the outbox)."""


@dataclass(frozen=True)
class ScheduleRetry(_ForJob):
    """Fire :class:`Retry` for this job at ``at`` (after ``delay`` seconds of backoff)."""

    at: dt.datetime
    delay: float


@dataclass(frozen=True)
class SendToDeadLetter(_ForJob):
    """Give up on the job: record it on the stage's dead-letter with its reason."""

    reason: str


@dataclass(frozen=True)
class KillJob(_ForJob):
    """Kill the running attempt of this job."""


Instruction = PublishStage | EmitNext | ScheduleRetry | SendToDeadLetter | KillJob


def _illegal(job: JobState, event: Event) -> PipelineError:
    name = type(event).__name__.lower()
    return PipelineError(
        f"{job.key}: event {name!r} is not allowed in state {job.state.value!r}"
        f" (attempts {job.attempts}, last reason: {job.last_reason or 'none'})"
    )


def _failure(
    job: JobState,
    classification: Classification,
    reason: str,
    policy: RetryPolicy,
    now: dt.datetime,
) -> tuple[JobState, list[Instruction]]:
    if classification is Classification.DETERMINISTIC:
        why = f"deterministic failure: {reason}"
        dead = dataclasses.replace(job, state=State.DEAD, last_reason=why, retry_at=None)
        return dead, [SendToDeadLetter(job.key, why)]
    if job.charged > policy.retries:
        why = f"gave up after {job.charged} attempts: {reason}"
        dead = dataclasses.replace(job, state=State.DEAD, last_reason=why, retry_at=None)
        return dead, [SendToDeadLetter(job.key, why)]
    delay = policy.delay(job.charged)
    at = now + dt.timedelta(seconds=delay)
    retrying = dataclasses.replace(job, state=State.RETRYING, last_reason=reason, retry_at=at)
    return retrying, [ScheduleRetry(job.key, at, delay)]


def transition(
    job: JobState,
    event: Event,
    *,
    policy: RetryPolicy | None = None,
    now: dt.datetime | None = None,
) -> tuple[JobState, list[Instruction]]:
    """Apply ``event`` to ``job``; return the new state and what the drivers must do.

    Args:
        job: the current snapshot (unchanged: states are immutable).
        event: what happened.
        policy: retry limit and backoff (default :class:`RetryPolicy`).
        now: the current time (UTC), used to schedule retries; default ``datetime.now(UTC)``.

    Raises:
        PipelineError: the event is not allowed in the job's state; the message names the
            file, stage, version, state and event.

    Example:
        >>> key = JobKey("run1_0001.raw", "rtraw", "1")
        >>> job, todo = transition(JobState(key), Submit())
        >>> job.state, todo
        (<State.QUEUED: 'queued'>, [PublishStage(key=...)])
    """
    policy = policy or RetryPolicy()
    now = now or dt.datetime.now(dt.UTC)
    s = job.state
    match event:
        case Submit() if s is State.PENDING:
            return dataclasses.replace(job, state=State.QUEUED), [PublishStage(job.key)]
        case Start() if s is State.QUEUED:
            return dataclasses.replace(
                job, state=State.RUNNING, attempts=job.attempts + 1, retry_at=None
            ), []
        case Succeed() if s is State.RUNNING:
            return dataclasses.replace(job, state=State.DONE, last_reason=None), [EmitNext(job.key)]
        case Fail(classification=c, reason=r) if s is State.RUNNING:
            return _failure(job, c, r, policy, now)
        case Timeout(seconds=t) if s is State.RUNNING:
            return _failure(job, Classification.TRANSIENT, f"timed out after {t:g} s", policy, now)
        case Retry(manual=False) if s is State.RETRYING:
            return dataclasses.replace(job, state=State.QUEUED, retry_at=None), [
                PublishStage(job.key)
            ]
        case Retry(manual=True) if s in (State.RETRYING, State.FAILED, State.DEAD):
            fresh = dataclasses.replace(job, state=State.QUEUED, attempts=0, retry_at=None)
            return fresh, [PublishStage(job.key)]
        case Lost(reason=r) if s is State.RUNNING:
            if job.lost + 1 > MAX_LOST:
                why = f"gave up: the worker was lost {job.lost + 1} times: {r}"
                dead = dataclasses.replace(job, state=State.DEAD, last_reason=why, retry_at=None)
                return dead, [SendToDeadLetter(job.key, why)]
            retrying = dataclasses.replace(job, state=State.RETRYING, last_reason=r, retry_at=now)
            return retrying, [ScheduleRetry(job.key, now, 0.0)]
        case Cancel(reason=r) if s in (State.QUEUED, State.RUNNING, State.RETRYING):
            todo: list[Instruction] = [KillJob(job.key)] if s is State.RUNNING else []
            return dataclasses.replace(job, state=State.FAILED, last_reason=r, retry_at=None), todo
        case Reset(reason=r):
            todo = [KillJob(job.key)] if s is State.RUNNING else []
            fresh = JobState(job.key, State.PENDING, attempts=0, last_reason=r)
            return fresh, todo
    raise _illegal(job, event)
