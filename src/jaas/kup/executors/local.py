"""Local process-pool executor: each attempt runs in its own session and process group.

Attempts of the stage runner (``python -m jaas.kup.stages ...``) are forked by a warm,
pre-imported parent (:mod:`jaas.kup.warm`) unless ``warm=False``; anything else (and
every attempt with ``warm=False``) is a fresh subprocess. Both are killed, timed out and
reported the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from jaas.errors import PipelineError
from jaas.kup.executors.base import (
    Executor,
    ExecutorStatus,
    Handle,
    JobSpec,
    JobStatus,
    register_executor,
)
from jaas.kup.warm import WarmParent, warm_args

__all__ = ["LocalExecutor"]

log = logging.getLogger("jaas.kup.executors.local")


@dataclass
class _Proc:
    pid: int
    popen: subprocess.Popen[bytes] | None  # None: a child of the warm parent
    spec: JobSpec
    started: float
    cpus: int
    status: JobStatus | None = None


def _result_code(spec: JobSpec) -> int | None:
    """Exit code implied by the runner's result file (a warm child whose parent was lost)."""
    argv = spec.argv
    if "--result" not in argv[:-1]:
        return None
    try:
        outcome = json.loads(Path(argv[argv.index("--result") + 1]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(outcome, dict):
        return None
    if outcome.get("ok"):
        return 0
    return 65 if outcome.get("classification") == "deterministic" else 75


class LocalExecutor(Executor):
    """Runs attempts as local processes, at most ``slots`` cpus' worth at once.

    Args:
        slots: cpus available (an attempt takes ``spec.cpus`` of them); default: all cores.
        kill_grace: seconds between SIGTERM and SIGKILL when killing an attempt.
        warm: fork stage-runner attempts from a pre-imported parent (default) instead of
            starting a new interpreter for each.
        preload: modules the warm parent imports up front (e.g. the stage's entry module).
        prestart: start the warm parent now instead of at the first attempt.

    Example:
        >>> ex = LocalExecutor(slots=2)
        >>> h = ex.submit(JobSpec("demo", ["true"], Path("demo.log")))   # doctest: +SKIP
    """

    name = "local"

    def __init__(
        self,
        slots: int | None = None,
        kill_grace: float = 2.0,
        warm: bool = True,
        preload: tuple[str, ...] | list[str] = (),
        prestart: bool = False,
    ) -> None:
        self.slots = max(1, slots or os.cpu_count() or 1)
        self.kill_grace = kill_grace
        self.warm = WarmParent(tuple(preload)) if warm else None
        self._procs: dict[str, _Proc] = {}
        if self.warm is not None and prestart:
            self.warm.start()

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
        args = None if self.warm is None else warm_args(spec.argv)
        popen = None
        if args is not None:
            assert self.warm is not None
            try:
                pid = self.warm.fork(args, spec.log_path, env, spec.cwd, spec.marker)
            except PipelineError as exc:  # run it cold; the parent is restarted next time
                log.warning("%s: %s; starting a fresh process instead", spec.name, exc)
                args = None
        if args is None:
            popen = self._popen(spec, env)
            pid = popen.pid
        handle = Handle(self.name, str(pid), spec)
        self._procs[handle.id] = _Proc(pid, popen, spec, time.monotonic(), cpus)
        return handle

    @staticmethod
    def _popen(spec: JobSpec, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(spec.log_path, "ab") as out:
            try:
                return subprocess.Popen(
                    spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=spec.cwd,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise PipelineError(f"{spec.name}: cannot start {spec.argv[0]!r}: {exc}") from exc

    def _get(self, handle: Handle) -> _Proc:
        try:
            return self._procs[handle.id]
        except KeyError:
            raise PipelineError(f"{handle.spec.name}: unknown local process {handle.id}") from None

    def _exit_code(self, proc: _Proc) -> int | None:
        """The attempt's exit code once it ended; None while it runs."""
        if proc.popen is not None:
            return proc.popen.poll()
        assert self.warm is not None
        code = self.warm.exit_code(proc.pid)
        if code is None and self.warm.lost(proc.pid):
            code = _result_code(proc.spec)
            return 1 if code is None else code
        return code

    def _wait(self, proc: _Proc, timeout: float | None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self._exit_code(proc)) is None:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            if proc.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(min(left, 1.0))
            else:
                assert self.warm is not None
                self.warm.wait(min(left, 0.05))
        return code

    def _kill(self, proc: _Proc) -> int | None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        code = self._wait(proc, self.kill_grace)
        if code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            code = self._wait(proc, None)
        # children that ignored SIGTERM after the leader exited
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return code

    def poll(self, handle: Handle) -> JobStatus:
        """Status of the attempt; kills it and reports TIMED_OUT past ``spec.timeout``."""
        proc = self._get(handle)
        if proc.status is not None:
            return proc.status
        elapsed = time.monotonic() - proc.started
        code = self._exit_code(proc)
        if code is None:
            timeout = handle.spec.timeout
            if timeout is None or elapsed <= timeout:
                return JobStatus(ExecutorStatus.RUNNING, None, elapsed)
            code = self._kill(proc)
            proc.status = JobStatus(ExecutorStatus.TIMED_OUT, code, elapsed)
            return proc.status
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of a finished attempt
        kind = ExecutorStatus.SUCCEEDED if code == 0 else ExecutorStatus.FAILED
        proc.status = JobStatus(kind, code, elapsed)
        return proc.status

    def wait(self, timeout: float) -> None:
        """Return as soon as an attempt may have ended, at the latest after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        running = [p for p in self._procs.values() if p.status is None]
        cold = [p for p in running if p.popen is not None]
        while True:
            if any(self._exit_code(p) is not None for p in running):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, 0.01) if cold else left
            if self.warm is not None and len(cold) < len(running):
                self.warm.wait(step)
            else:
                time.sleep(step)

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
            if self.warm is not None and proc.popen is None:
                self.warm.forget(proc.pid)

    def shutdown(self) -> None:
        """Cancel every attempt still running, then stop the warm parent."""
        for proc in self._procs.values():
            self._cancel(proc)
        self._procs.clear()
        if self.warm is not None:
            self.warm.close()


register_executor("local", LocalExecutor)
