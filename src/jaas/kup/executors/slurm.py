"""Slurm executor: each attempt is a batch job (``sbatch``), polled with ``squeue``/``scontrol``.

The attempt's argument list is written into a small batch script, each argument quoted
with :func:`shlex.quote` (never a shell string built from user text). Status comes from
one ``squeue --states=all`` call per poll round for every tracked job; the exit code of a
finished job from ``scontrol show job``, or, once Slurm forgot it (``MinJobAge``), from
``sacct`` (slurmdbd) or ``sacct -c`` (the ``jobcomp/filetxt`` file). The stage timeout is
enforced here (``scancel``, reported as timed out) to the second, with Slurm's own
``--time`` (whole minutes, one more than needed) as the backstop if the worker dies.

Which cluster: the Slurm commands read ``SLURM_CONF`` (or the ``slurm_conf`` option);
partition and account come from the options or Slurm's own ``SBATCH_PARTITION`` /
``SBATCH_ACCOUNT`` environment variables.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jaas.errors import PipelineError
from jaas.kup.executors.base import ExecutorStatus, Handle, JobSpec, JobStatus, register_executor
from jaas.kup.executors.batch import BatchExecutor, BatchJob, check_env_names

__all__ = [
    "SlurmExecutor",
    "batch_script",
    "map_slurm_state",
    "parse_exit_code",
    "parse_slurm_time",
    "sbatch_argv",
]

_RUNNING_STATES = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "SUSPENDED",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
}
_FAILED_STATES = {
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
    "REVOKED",
    "SPECIAL_EXIT",
}
_JOB_NAME_BAD = re.compile(r"[^A-Za-z0-9_.:#+=-]")


def parse_exit_code(text: str | None) -> int | None:
    """Slurm's ``EXIT:SIGNAL`` as one number: the exit status, or ``-SIGNAL`` if killed."""
    if not text or ":" not in text:
        return None
    code, _, sig = text.strip().partition(":")
    try:
        c, s = int(code), int(sig)
    except ValueError:
        return None
    return -s if s else c


def parse_slurm_time(text: str) -> float:
    """Seconds in a Slurm duration ``[D-][HH:]MM:SS`` (``INVALID``/empty: 0)."""
    text = text.strip()
    days = 0
    if "-" in text:
        d, _, text = text.partition("-")
        days = int(d) if d.isdigit() else 0
    parts = text.split(":")
    if not all(p.isdigit() for p in parts) or not text:
        return float(days * 86400)
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return float(days * 86400 + seconds)


def map_slurm_state(state: str, exit_code: int | None, elapsed: float = 0.0) -> JobStatus:
    """An :class:`ExecutorStatus` for a Slurm job state (``CANCELLED by 0`` counts as CANCELLED).

    COMPLETED -> succeeded; FAILED, NODE_FAIL, OUT_OF_MEMORY (and other ends) -> failed
    with the exit code; TIMEOUT -> timed_out; CANCELLED -> cancelled; PENDING, RUNNING and
    other live states -> running.
    """
    word = state.strip().split()[0].rstrip("+").upper() if state.strip() else "UNKNOWN"
    if word in _RUNNING_STATES:
        return JobStatus(ExecutorStatus.RUNNING, None, elapsed)
    if word == "COMPLETED":
        return JobStatus(ExecutorStatus.SUCCEEDED, 0 if exit_code is None else exit_code, elapsed)
    if word == "TIMEOUT":
        return JobStatus(ExecutorStatus.TIMED_OUT, exit_code, elapsed)
    if word == "CANCELLED":
        return JobStatus(ExecutorStatus.CANCELLED, exit_code, elapsed)
    # FAILED with exit 0 happens (e.g. OUT_OF_MEMORY): never report that as success
    code = exit_code if exit_code else None
    return JobStatus(ExecutorStatus.FAILED, code, elapsed)


def batch_script(spec: JobSpec) -> str:
    """The batch script of an attempt: its env exported and its argv exec'd, all quoted."""
    if not spec.argv:
        raise PipelineError(f"{spec.name}: empty argument list")
    lines = ["#!/bin/sh", f"# jaas attempt {spec.name} (written by jaas.kup.executors.slurm)"]
    check_env_names(spec)
    for key, value in sorted(spec.env.items()):
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append("exec " + shlex.join(spec.argv))
    return "\n".join(lines) + "\n"


def sbatch_argv(
    spec: JobSpec,
    script: Path,
    *,
    partition: str | None = None,
    account: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``sbatch`` command line for an attempt (resources, log, name, time limit)."""
    name = _JOB_NAME_BAD.sub("_", spec.name)[:128] or "jaas"
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={name}",
        f"--output={spec.log_path}",
        "--open-mode=append",
        f"--cpus-per-task={spec.cpus}",
        f"--mem={spec.memory_mb}M",
    ]
    if spec.timeout is not None:
        # whole minutes, one more than needed: the executor kills on time, Slurm backs it up
        argv.append(f"--time={math.ceil(spec.timeout / 60.0) + 1}")
    if spec.cwd is not None:
        argv.append(f"--chdir={spec.cwd}")
    if partition:
        argv.append(f"--partition={partition}")
    if account:
        argv.append(f"--account={account}")
    argv += list(extra)
    argv.append(str(script))
    return argv


@dataclass
class _Job(BatchJob):
    slurm_state: str = "PENDING"
    seen: bool = True


class SlurmExecutor(BatchExecutor[_Job]):
    """Runs attempts as Slurm batch jobs.

    Args:
        slots: attempts in flight at once (Slurm queues them; ``max_jobs`` wins if given).
        max_jobs: same as ``slots``.
        slurm_conf: path of ``slurm.conf`` for every Slurm command (default: ``SLURM_CONF``).
        partition, account: passed to ``sbatch`` when given.
        sbatch_args: further ``sbatch`` options, e.g. ``["--qos=short"]``.
        poll_interval: seconds during which one ``squeue`` answer serves every poll.
        command_timeout: seconds before a hanging Slurm command is an error.

    Example:
        >>> ex = SlurmExecutor(slots=50, partition="juno")          # doctest: +SKIP
        >>> h = ex.submit(JobSpec("demo", ["true"], Path("demo.log")))  # doctest: +SKIP
    """

    name = "slurm"
    system = "Slurm"

    def __init__(
        self,
        slots: int | None = None,
        max_jobs: int | None = None,
        slurm_conf: str | os.PathLike[str] | None = None,
        partition: str | None = None,
        account: str | None = None,
        sbatch_args: Sequence[str] = (),
        poll_interval: float = 1.0,
        command_timeout: float = 60.0,
    ) -> None:
        super().__init__(max_jobs or slots or 100, poll_interval)
        self.env = dict(os.environ)
        if slurm_conf is not None:
            self.env["SLURM_CONF"] = os.fspath(slurm_conf)
        self.partition = partition
        self.account = account
        self.sbatch_args = list(sbatch_args)
        self.command_timeout = command_timeout

    # ---- running Slurm commands ----------------------------------------------------------

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            res = subprocess.run(
                argv,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.command_timeout,
                check=False,
            )
        except FileNotFoundError:
            raise PipelineError(
                f"{argv[0]}: Slurm command not found; install the Slurm client "
                "(e.g. apt-get install slurm-client) or use another executor"
            ) from None
        except subprocess.TimeoutExpired:
            raise PipelineError(
                f"{shlex.join(argv)}: no answer from Slurm in {self.command_timeout:g} s"
            ) from None
        if check and res.returncode != 0:
            raise PipelineError(
                f"{shlex.join(argv)} failed (exit {res.returncode}): "
                f"{(res.stderr or res.stdout).strip()}"
            )
        return res

    # ---- the Executor interface ----------------------------------------------------------

    def submit(self, spec: JobSpec) -> Handle:
        """Write the batch script beside the log (``LOG.sbatch``) and ``sbatch`` it."""
        self._check_slot(spec)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        script = spec.log_path.with_name(spec.log_path.name + ".sbatch")
        script.write_text(batch_script(spec), encoding="utf-8")
        script.chmod(0o755)
        argv = sbatch_argv(
            spec, script, partition=self.partition, account=self.account, extra=self.sbatch_args
        )
        res = self._run(argv)
        job_id = res.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise PipelineError(f"{spec.name}: sbatch gave no job id: {res.stdout.strip()!r}")
        return self._track(job_id, _Job(spec))

    def _refresh(self) -> None:
        live = self._live()
        if not live:
            return
        argv = ["squeue", "-h", "--states=all", "-o", "%i|%T|%M", f"--jobs={','.join(live)}"]
        res = self._run(argv, check=False)
        answered: dict[str, tuple[str, float]] = {}
        for line in res.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 3:
                answered[parts[0]] = (parts[1], parse_slurm_time(parts[2]))
        if res.returncode != 0 and "invalid job id" not in res.stderr.lower():
            # the controller is unreachable: that says nothing about the jobs, try again later
            raise PipelineError(
                f"{shlex.join(argv)} failed (exit {res.returncode}): {res.stderr.strip()}"
            )
        if res.returncode != 0 and not answered and len(live) > 1:
            # squeue refuses the whole list if one id is unknown: ask one by one
            for jid in live:
                one = self._run([*argv[:-1], f"--jobs={jid}"], check=False)
                for line in one.stdout.splitlines():
                    parts = line.strip().split("|")
                    if len(parts) == 3:
                        answered[parts[0]] = (parts[1], parse_slurm_time(parts[2]))
        for jid in live:
            job = self._jobs[jid]
            job.seen = jid in answered
            if job.seen:
                job.slurm_state, job.elapsed = answered[jid]
        self._refreshed = time.monotonic()

    def _final(self, jid: str, job: _Job) -> JobStatus:
        """Final status of a job Slurm says has ended (or forgot): exit code included."""
        if job.seen:
            res = self._run(["scontrol", "-o", "show", "job", jid], check=False)
            fields = dict(item.split("=", 1) for item in res.stdout.split() if "=" in item)
            if fields.get("JobState"):
                code = parse_exit_code(fields.get("ExitCode"))
                return map_slurm_state(fields["JobState"], code, job.elapsed)
        for accounting in (["sacct"], ["sacct", "-c"]):
            argv = [*accounting, "-j", jid, "-n", "-P", "-X", "-o", "JobID,State,ExitCode"]
            res = self._run(argv, check=False)
            for line in res.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 3 and parts[0] == jid:
                    return map_slurm_state(parts[1], parse_exit_code(parts[2]), job.elapsed)
        return JobStatus(ExecutorStatus.FAILED, None, job.elapsed)

    def poll(self, handle: Handle) -> JobStatus:
        """Status of the job; past ``spec.timeout`` of run time it is cancelled as TIMED_OUT."""
        job = self._get(handle)
        if job.status is not None:
            return job.status
        self._refresh_if_due()
        current = map_slurm_state(job.slurm_state, None, job.elapsed) if job.seen else None
        if current is not None and not current.finished:
            timeout = handle.spec.timeout
            if timeout is not None and job.elapsed > timeout:
                self._kill([handle.id], "timeout")
                job.status = JobStatus(ExecutorStatus.TIMED_OUT, None, job.elapsed)
                return job.status
            return current
        job.status = self._final(handle.id, job)
        return job.status

    def _kill(self, job_ids: list[str], reason: str) -> None:
        """``scancel`` the jobs (no error if they already ended)."""
        self._run(["scancel", *job_ids], check=False)


register_executor("slurm", SlurmExecutor)
