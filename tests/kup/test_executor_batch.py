"""The shared base of the batch executors, on a stand-in batch system (a dict of states)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from jaas.errors import PipelineError
from jaas.kup.executors.base import ExecutorStatus, Handle, JobSpec, JobStatus
from jaas.kup.executors.batch import BatchExecutor, BatchJob, check_env_names


@dataclass
class _Job(BatchJob):
    state: str = "queued"


class _Toy(BatchExecutor[_Job]):
    """A batch system whose jobs end when the test says so."""

    name = "toy"
    system = "Toy"

    def __init__(self, max_jobs: int) -> None:
        super().__init__(max_jobs, poll_interval=3600.0)
        self.system_states: dict[str, str] = {}
        self.queries = 0
        self.killed: list[tuple[str, str]] = []

    def submit(self, spec: JobSpec) -> Handle:
        self._check_slot(spec)
        jid = str(len(self.system_states) + 1)
        self.system_states[jid] = "queued"
        return self._track(jid, _Job(spec))

    def _refresh(self) -> None:
        self.queries += 1
        for jid in self._live():
            self._jobs[jid].state = self.system_states[jid]

    def _kill(self, job_ids: list[str], reason: str) -> None:
        self.killed += [(jid, reason) for jid in job_ids]

    def poll(self, handle: Handle) -> JobStatus:
        job = self._get(handle)
        if job.status is None:
            self._refresh_if_due()
            if job.state == "done":
                job.status = JobStatus(ExecutorStatus.SUCCEEDED, 0)
        return job.status or JobStatus(ExecutorStatus.RUNNING)


def _spec(tmp_path: Path, name: str = "a") -> JobSpec:
    return JobSpec(name, ["true"], tmp_path / f"{name}.log")


def test_slots_limit_and_free_again_when_done(tmp_path: Path) -> None:
    ex = _Toy(max_jobs=2)
    a = ex.submit(_spec(tmp_path, "a"))
    ex.submit(_spec(tmp_path, "b"))
    assert ex.free_slots() == 0
    with pytest.raises(PipelineError, match=r"^c: 2 Toy jobs already in flight$"):
        ex.submit(_spec(tmp_path, "c"))
    ex.system_states[a.id] = "done"
    assert ex.poll(a).status is ExecutorStatus.SUCCEEDED
    assert ex.free_slots() == 1


def test_one_query_serves_polls_until_a_submit(tmp_path: Path) -> None:
    ex = _Toy(max_jobs=5)
    a = ex.submit(_spec(tmp_path, "a"))
    b = ex.submit(_spec(tmp_path, "b"))
    ex.poll(a)
    ex.poll(b)
    ex.poll(a)
    assert ex.queries == 1  # within poll_interval
    ex.submit(_spec(tmp_path, "c"))
    ex.poll(a)
    assert ex.queries == 2  # a submit makes the next poll ask again


def test_cancel_forget_shutdown(tmp_path: Path) -> None:
    ex = _Toy(max_jobs=5)
    a = ex.submit(_spec(tmp_path, "a"))
    ex.submit(_spec(tmp_path, "b"))
    ex.cancel(a)
    ex.cancel(a)  # no error, no second kill
    assert ex.poll(a).status is ExecutorStatus.CANCELLED
    assert ex.killed == [("1", "cancelled by jaas")]
    ex.forget(a)
    with pytest.raises(PipelineError, match=r"^a: unknown Toy job 1$"):
        ex.poll(a)
    ex.shutdown()
    assert ex.killed[-1] == ("2", "jaas worker stopped")
    assert ex.free_slots() == 5


def test_env_names_a_shell_cannot_export(tmp_path: Path) -> None:
    check_env_names(JobSpec("ok", ["true"], tmp_path / "l", env={"JAAS_X": "1"}))
    with pytest.raises(PipelineError, match=r"^bad: environment variable name 'A-B' is not valid"):
        check_env_names(JobSpec("bad", ["true"], tmp_path / "l", env={"A-B": "1"}))
