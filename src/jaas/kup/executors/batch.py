"""What the batch-system executors (Slurm, HTCondor) share: the job table and its life cycle.

A batch executor submits each attempt as one job of an external system and polls that
system in batches: one query (``squeue``, a schedd query) per ``poll_interval`` serves the
polls of every job. Subclasses say how to submit, query, finish and kill jobs; this base
keeps the table of jobs in flight, the slot count, the refresh cadence, cancel, forget
and shutdown.
"""

from __future__ import annotations

import abc
import math
import re
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from jaas.errors import PipelineError
from jaas.kup.executors.base import Executor, ExecutorStatus, Handle, JobSpec, JobStatus

__all__ = ["BatchExecutor", "BatchJob", "check_env_names"]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_names(spec: JobSpec) -> None:
    """PipelineError for an environment variable name a shell could not export."""
    for key in spec.env:
        if not _ENV_NAME.match(key):
            raise PipelineError(f"{spec.name}: environment variable name {key!r} is not valid")


@dataclass
class BatchJob:
    """One job in flight (``status`` is set once it has ended or was cancelled)."""

    spec: JobSpec
    status: JobStatus | None = None
    elapsed: float = 0.0


J = TypeVar("J", bound="BatchJob")


class BatchExecutor(Executor, Generic[J]):
    """Base of executors that hand attempts to a batch system.

    Args:
        max_jobs: jobs in flight at once (the batch system queues them).
        poll_interval: seconds during which one query of the batch system serves every poll.
    """

    system: str = "batch"  # the batch system's name in messages ("Slurm", "HTCondor")

    def __init__(self, max_jobs: int, poll_interval: float) -> None:
        self.max_jobs = max(1, max_jobs)
        self.poll_interval = poll_interval
        self._jobs: dict[str, J] = {}
        self._refreshed = -math.inf

    # ---- for subclasses ------------------------------------------------------------------

    @abc.abstractmethod
    def _refresh(self) -> None:
        """Ask the batch system about every live job (one query) and store the answers."""

    @abc.abstractmethod
    def _kill(self, job_ids: list[str], reason: str) -> None:
        """Remove these jobs from the batch system (no error if they already ended)."""

    def _check_slot(self, spec: JobSpec) -> None:
        if self.free_slots() <= 0:
            raise PipelineError(
                f"{spec.name}: {self.max_jobs} {self.system} jobs already in flight"
            )

    def _track(self, job_id: str, job: J) -> Handle:
        """Record a submitted job; the next poll asks the batch system again."""
        self._jobs[job_id] = job
        self._refreshed = -math.inf
        return Handle(self.name, job_id, job.spec)

    def _live(self) -> list[str]:
        return [jid for jid, j in self._jobs.items() if j.status is None]

    def _refresh_if_due(self) -> None:
        if time.monotonic() - self._refreshed >= self.poll_interval:
            self._refresh()
            self._refreshed = time.monotonic()

    def _get(self, handle: Handle) -> J:
        try:
            return self._jobs[handle.id]
        except KeyError:
            raise PipelineError(
                f"{handle.spec.name}: unknown {self.system} job {handle.id}"
            ) from None

    # ---- the Executor interface ----------------------------------------------------------

    def free_slots(self) -> int:
        """Attempts that may still be submitted before ``max_jobs`` are in flight."""
        return self.max_jobs - len(self._live())

    def cancel(self, handle: Handle) -> None:
        """Remove the job from the batch system (no error if it already ended)."""
        job = self._get(handle)
        if job.status is None:
            self._kill([handle.id], "cancelled by jaas")
            job.status = JobStatus(ExecutorStatus.CANCELLED, None, job.elapsed)

    def forget(self, handle: Handle) -> None:
        """Drop a finished job from the table."""
        job = self._jobs.get(handle.id)
        if job is not None and job.status is not None:
            del self._jobs[handle.id]

    def shutdown(self) -> None:
        """Remove every job still in flight."""
        live = self._live()
        if live:
            self._kill(live, "jaas worker stopped")
        self._jobs.clear()
