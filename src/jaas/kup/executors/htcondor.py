"""HTCondor executor: each attempt is one job submitted to a schedd through the Python bindings.

Written against the ``htcondor2`` module of the PyPI wheel ``htcondor`` (>= 24). The submit
description (:func:`submit_description`: executable and arguments in HTCondor's quoted
argument syntax, resources, output/error/user-log paths, a ``periodic_remove`` expression
for the stage timeout) and the mapping of job ClassAds to executor statuses
(:func:`map_condor_ad`) are pure and unit-tested.

NOT integration-tested: no HTCondor daemons exist on our test machines (not packaged for
Debian 12), so submitting to, querying and removing from a real schedd (and reading
its history for jobs that left the queue) are exercised only against a stand-in schedd
object. The executor assumes a shared file system between submit and execute nodes
(``should_transfer_files = NO``; logs written in place).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jaas.errors import PipelineError
from jaas.kup.executors.base import ExecutorStatus, Handle, JobSpec, JobStatus, register_executor
from jaas.kup.executors.batch import BatchExecutor, BatchJob

__all__ = [
    "HTCondorExecutor",
    "condor_arguments",
    "condor_environment",
    "map_condor_ad",
    "submit_description",
]

_PROJECTION = [
    "ClusterId",
    "JobStatus",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "RemoveReason",
    "HoldReason",
    "RemoteWallClockTime",
    "JobCurrentStartDate",
]
# JobStatus codes of the schedd
_IDLE, _RUNNING, _REMOVED, _COMPLETED, _HELD, _TRANSFERRING, _SUSPENDED = range(1, 8)


def _quote_arg(arg: str) -> str:
    """One argument in HTCondor's new argument syntax (inside the outer double quotes)."""
    text = arg.replace('"', '""')
    if not text or any(c.isspace() for c in text) or "'" in text:
        return "'" + text.replace("'", "''") + "'"
    return text


def condor_arguments(args: list[str]) -> str:
    """``arguments`` value for a list (HTCondor's quoted syntax: no shell, no splitting)."""
    for a in args:
        if "\n" in a or "\r" in a:
            raise PipelineError(f"argument {a!r}: HTCondor arguments cannot hold a newline")
    return '"' + " ".join(_quote_arg(a) for a in args) + '"'


def condor_environment(env: Mapping[str, str]) -> str:
    """``environment`` value for a mapping, in the same quoted syntax."""
    for key in env:
        if not key or "=" in key or any(c.isspace() for c in key):
            raise PipelineError(f"environment variable name {key!r} is not valid")
    return condor_arguments([f"{k}={v}" for k, v in sorted(env.items())])


def _classad_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def submit_description(
    spec: JobSpec, *, getenv: bool = True, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Submit description of an attempt (keys and values as in a submit file).

    The stage timeout becomes a ``periodic_remove`` expression on run time; the schedd's
    ``RemoveReason`` then names ``PeriodicRemove``, which tells a timed-out job apart from
    one that an operator removed.
    """
    if not spec.argv:
        raise PipelineError(f"{spec.name}: empty argument list")
    exe = spec.argv[0]
    if os.sep not in exe:
        exe = shutil.which(exe) or exe
    log = str(spec.log_path)
    desc = {
        "universe": "vanilla",
        "executable": exe,
        "arguments": condor_arguments(spec.argv[1:]),
        "output": log,
        "error": log,
        "log": f"{log}.condor.log",
        "stream_output": "true",
        "request_cpus": str(spec.cpus),
        "request_memory": f"{spec.memory_mb}",
        "should_transfer_files": "NO",
        "transfer_executable": "false",
        "getenv": "true" if getenv else "false",
        "batch_name": _classad_string(spec.name),
        "My.JaasAttempt": _classad_string(spec.name),
    }
    if spec.env:
        desc["environment"] = condor_environment(spec.env)
    if spec.cwd is not None:
        desc["initialdir"] = str(spec.cwd)
    if spec.timeout is not None:
        limit = math.ceil(spec.timeout)
        desc["My.JaasTimeout"] = str(limit)
        desc["periodic_remove"] = (
            f"(JobStatus == {_RUNNING}) && (time() - JobCurrentStartDate > {limit})"
        )
    desc.update(extra or {})
    return desc


def map_condor_ad(ad: Mapping[str, Any], now: float | None = None) -> JobStatus:
    """An executor status from a job ClassAd (``JobStatus``, exit and removal attributes).

    Idle, running, transferring, suspended -> running; completed -> succeeded (exit 0) or
    failed (exit code, ``-signal`` if killed by one); removed by the timeout expression ->
    timed_out, otherwise -> cancelled; held -> failed (the executor then removes it).
    """
    code = int(ad.get("JobStatus", 0))
    now = time.time() if now is None else now
    elapsed = float(ad.get("RemoteWallClockTime") or 0.0)
    start = ad.get("JobCurrentStartDate")
    if not elapsed and start:
        elapsed = max(0.0, now - float(start))
    if code in (_IDLE, _RUNNING, _TRANSFERRING, _SUSPENDED):
        return JobStatus(ExecutorStatus.RUNNING, None, elapsed)
    if code == _COMPLETED:
        if ad.get("ExitBySignal"):
            return JobStatus(ExecutorStatus.FAILED, -int(ad.get("ExitSignal") or 0), elapsed)
        exit_code = int(ad.get("ExitCode", 0) or 0)
        kind = ExecutorStatus.SUCCEEDED if exit_code == 0 else ExecutorStatus.FAILED
        return JobStatus(kind, exit_code, elapsed)
    if code == _REMOVED:
        reason = str(ad.get("RemoveReason") or "")
        timed_out = "PeriodicRemove" in reason
        kind = ExecutorStatus.TIMED_OUT if timed_out else ExecutorStatus.CANCELLED
        return JobStatus(kind, None, elapsed)
    if code == _HELD:
        return JobStatus(ExecutorStatus.FAILED, None, elapsed)
    raise PipelineError(f"HTCondor job {ad.get('ClusterId')}: unknown JobStatus {code}")


@dataclass
class _Job(BatchJob):
    ad: dict[str, Any] | None = None


class HTCondorExecutor(BatchExecutor[_Job]):
    """Runs attempts as HTCondor jobs of one schedd.

    Args:
        slots: attempts in flight at once (the schedd queues them).
        schedd: a schedd object (default: located from the local HTCondor configuration,
            or by ``schedd_name`` in the pool ``pool``).
        schedd_name, pool: which schedd (default: the local one).
        getenv: pass the worker's environment to the job (needs a shared software area).
        submit_extra: more submit commands, e.g. ``{"accounting_group": "juno.prod"}``.
        poll_interval: seconds during which one schedd query serves every poll.

    Example:
        >>> ex = HTCondorExecutor(slots=100, pool="cm.example.org")   # doctest: +SKIP
    """

    name = "htcondor"
    system = "HTCondor"

    def __init__(
        self,
        slots: int | None = None,
        schedd: Any = None,
        schedd_name: str | None = None,
        pool: str | None = None,
        getenv: bool = True,
        submit_extra: Mapping[str, str] | None = None,
        poll_interval: float = 2.0,
    ) -> None:
        super().__init__(slots or 100, poll_interval)
        self._schedd = schedd
        self.schedd_name = schedd_name
        self.pool = pool
        self.getenv = getenv
        self.submit_extra = dict(submit_extra or {})

    def _bindings(self) -> Any:
        try:
            import htcondor2
        except ImportError:
            raise PipelineError(
                "the HTCondor executor needs the HTCondor Python bindings: pip install htcondor"
            ) from None
        return htcondor2

    def schedd(self) -> Any:
        """The schedd (located once); PipelineError naming what to configure if unreachable."""
        if self._schedd is None:
            htc = self._bindings()
            where = f"{self.schedd_name or 'local schedd'} in pool {self.pool or '(local)'}"
            try:
                if self.schedd_name is None and self.pool is None:
                    self._schedd = htc.Schedd()
                else:
                    coll = htc.Collector(self.pool)
                    ad = coll.locate(htc.DaemonType.Schedd, self.schedd_name)
                    self._schedd = htc.Schedd(ad)
            except Exception as exc:
                raise PipelineError(
                    f"no HTCondor schedd reachable ({where}): {exc}; set CONDOR_CONFIG or the "
                    "executor's pool/schedd_name options, or use another executor"
                ) from None
        return self._schedd

    def submit(self, spec: JobSpec) -> Handle:
        """Submit one job built by :func:`submit_description`; the handle id is its cluster id."""
        self._check_slot(spec)
        desc = submit_description(spec, getenv=self.getenv, extra=self.submit_extra)
        schedd = self.schedd()
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            submit = self._bindings().Submit(desc)
            result = schedd.submit(submit, count=1)
            cluster = str(result.cluster())
        except PipelineError:
            raise
        except Exception as exc:
            raise PipelineError(f"{spec.name}: HTCondor refused the job: {exc}") from None
        return self._track(cluster, _Job(spec))

    def _refresh(self) -> None:
        live = self._live()
        if not live:
            return
        constraint = " || ".join(f"ClusterId == {cid}" for cid in live)
        schedd = self.schedd()
        try:
            ads = {str(ad["ClusterId"]): dict(ad) for ad in schedd.query(constraint, _PROJECTION)}
            gone = [cid for cid in live if cid not in ads]
            if gone:
                old = " || ".join(f"ClusterId == {cid}" for cid in gone)
                for ad in schedd.history(old, _PROJECTION, match=len(gone)):
                    ads[str(ad["ClusterId"])] = dict(ad)
        except Exception as exc:
            raise PipelineError(f"HTCondor schedd query failed: {exc}") from None
        for cid in live:
            self._jobs[cid].ad = ads.get(cid)
        self._refreshed = time.monotonic()

    def poll(self, handle: Handle) -> JobStatus:
        """Status of the job; a held job is removed and reported failed."""
        job = self._get(handle)
        if job.status is not None:
            return job.status
        self._refresh_if_due()
        if job.ad is None:
            return JobStatus(ExecutorStatus.RUNNING)  # not visible yet: ask again later
        st = map_condor_ad(job.ad)
        if st.finished:
            if int(job.ad.get("JobStatus", 0)) == _HELD:
                self._remove(handle.id, f"held: {job.ad.get('HoldReason')}")
            job.status = st
        return st

    def _remove(self, cluster: str, reason: str) -> None:
        action = self._bindings().JobAction.Remove
        try:
            self.schedd().act(action, f"ClusterId == {cluster}", reason)
        except Exception as exc:
            raise PipelineError(f"HTCondor job {cluster}: cannot remove it: {exc}") from None

    def _kill(self, job_ids: list[str], reason: str) -> None:
        """Remove the jobs from the schedd, one by one (no error if they already ended)."""
        for cid in job_ids:
            self._remove(cid, reason)


register_executor("htcondor", HTCondorExecutor)
