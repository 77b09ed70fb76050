"""Local process-pool executor: each attempt is a subprocess in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass

from jaas.errors import PipelineError
from jaas.kup.executors.base import (
    Executor,
    ExecutorStatus,
    Handle,
    JobSpec,
    JobStatus,
    register_executor,
)

__all__ = ["LocalExecutor"]


@dataclass
class _Proc:
    popen: subprocess.Popen[bytes]
    started: float
    cpus: int
    status: JobStatus | None = None


class LocalExecutor(Executor):
    """Runs attempts as local processes, at most ``slots`` cpus' worth at once.

    Args:
        slots: cpus available (an attempt takes ``spec.cpus`` of them); default: all cores.
        kill_grace: seconds between SIGTERM and SIGKILL when killing an attempt.

    Example:
        >>> ex = LocalExecutor(slots=2)
        >>> h = ex.submit(JobSpec("demo", ["true"], Path("demo.log")))   # doctest: +SKIP
    """

    name = "local"

    def __init__(self, slots: int | None = None, kill_grace: float = 2.0) -> None:
        self.slots = max(1, slots or os.cpu_count() or 1)
        self.kill_grace = kill_grace
        self._procs: dict[str, _Proc] = {}

    def _used(self) -> int:
        return sum(p.cpus for p in self._procs.values() if p.status is None)

    def free_slots(self) -> int:
        """Cpus not taken by running attempts."""
        return self.slots - self._used()

    def submit(self, spec: JobSpec) -> Handle:
        """Start ``spec.argv`` in a new session with output appended to ``spec.log_path``."""
        cpus = min(spec.cpus, self.slots)
        if cpus > self.free_slots():
            raise PipelineError(
                f"{spec.name}: no free slot ({self._used()} of {self.slots} cpus in use)"
            )
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **spec.env}
        with open(spec.log_path, "ab") as log:
            try:
                popen = subprocess.Popen(
                    spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=spec.cwd,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise PipelineError(f"{spec.name}: cannot start {spec.argv[0]!r}: {exc}") from exc
        handle = Handle(self.name, str(popen.pid), spec)
        self._procs[handle.id] = _Proc(popen, time.monotonic(), cpus)
        return handle

    def _get(self, handle: Handle) -> _Proc:
        try:
            return self._procs[handle.id]
        except KeyError:
            raise PipelineError(f"{handle.spec.name}: unknown local process {handle.id}") from None

    def _kill(self, proc: _Proc) -> int:
        pgid = proc.popen.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            code = proc.popen.wait(self.kill_grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            code = proc.popen.wait()
        # children that ignored SIGTERM after the leader exited
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        return code

    def poll(self, handle: Handle) -> JobStatus:
        """Status of the attempt; kills it and reports TIMED_OUT past ``spec.timeout``."""
        proc = self._get(handle)
        if proc.status is not None:
            return proc.status
        elapsed = time.monotonic() - proc.started
        code = proc.popen.poll()
        if code is None:
            timeout = handle.spec.timeout
            if timeout is None or elapsed <= timeout:
                return JobStatus(ExecutorStatus.RUNNING, None, elapsed)
            code = self._kill(proc)
            proc.status = JobStatus(ExecutorStatus.TIMED_OUT, code, elapsed)
            return proc.status
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, signal.SIGKILL)  # leftovers of a finished attempt
        kind = ExecutorStatus.SUCCEEDED if code == 0 else ExecutorStatus.FAILED
        proc.status = JobStatus(kind, code, elapsed)
        return proc.status

    def cancel(self, handle: Handle) -> None:
        """Kill the attempt's whole process group (SIGTERM, then SIGKILL after the grace)."""
        self._cancel(self._get(handle))

    def _cancel(self, proc: _Proc) -> None:
        if proc.status is None:
            code = self._kill(proc)
            elapsed = time.monotonic() - proc.started
            proc.status = JobStatus(ExecutorStatus.CANCELLED, code, elapsed)

    def forget(self, handle: Handle) -> None:
        """Drop a finished attempt from the table."""
        proc = self._procs.get(handle.id)
        if proc is not None and proc.status is not None:
            del self._procs[handle.id]

    def shutdown(self) -> None:
        """Cancel every attempt still running."""
        for proc in self._procs.values():
            self._cancel(proc)
        self._procs.clear()


register_executor("local", LocalExecutor)
