"""The executor interface (submit, poll, cancel) and the registry of executors by name."""

from __future__ import annotations

import abc
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaas.errors import ConfigError


@dataclass(frozen=True)
class JobSpec:
    """What to run for one attempt: an argument list (never a shell string) and its limits.

    Attributes:
        name: a label for logs and the batch system (e.g. ``rtraw:run1_0001.raw#2``).
        argv: the program and its arguments.
        log_path: stdout and stderr of the attempt go to this file.
        timeout: seconds before the attempt is killed (None: no limit).
        cpus, memory_mb: resources requested (the local executor uses cpus as slots).
        cwd, env: working directory and extra environment variables.
        marker: a file the attempt holds an exclusive ``flock`` on while it runs, when the
            executor cannot show it in the command line (the warm local runner), so that
            the orphan reclaim of another process can tell it still runs.
    """

    name: str
    argv: list[str]
    log_path: Path
    timeout: float | None = None
    cpus: int = 1
    memory_mb: int = 1024
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    marker: Path | None = None


class ExecutorStatus(enum.StrEnum):
    """Where an attempt stands in its executor."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobStatus:
    """Status of an attempt; ``exit_code`` is set once it has ended (negative: signal)."""

    status: ExecutorStatus
    exit_code: int | None = None
    elapsed: float = 0.0

    @property
    def finished(self) -> bool:
        """True once the attempt no longer runs."""
        return self.status is not ExecutorStatus.RUNNING


@dataclass(frozen=True)
class Handle:
    """An executor's reference to a submitted attempt (``id`` is the pid, the Slurm job id...)."""

    executor: str
    id: str
    spec: JobSpec


class Executor(abc.ABC):
    """Runs attempts somewhere; the worker calls it without knowing where.

    Contract for implementers: :meth:`submit` returns at once; :meth:`poll` never blocks
    and reports a timed-out attempt as ``TIMED_OUT`` after killing it; :meth:`cancel`
    kills the attempt and everything it started; logs of each attempt end up in
    ``spec.log_path``; :meth:`free_slots` says how many more attempts may be submitted.
    """

    name: str = "base"

    @abc.abstractmethod
    def submit(self, spec: JobSpec) -> Handle:
        """Start an attempt; PipelineError if no slot is free or it cannot start."""

    @abc.abstractmethod
    def poll(self, handle: Handle) -> JobStatus:
        """Current status of an attempt (enforces the timeout)."""

    @abc.abstractmethod
    def cancel(self, handle: Handle) -> None:
        """Kill an attempt and its children (no error if it already ended)."""

    @abc.abstractmethod
    def free_slots(self) -> int:
        """How many more attempts can be submitted now."""

    def wait(self, timeout: float) -> None:
        """Block until an attempt may have ended, at most ``timeout`` s (default: sleep)."""
        time.sleep(max(0.0, timeout))

    def forget(self, handle: Handle) -> None:  # noqa: B027 - optional hook
        """Drop bookkeeping of a finished attempt."""

    def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Cancel what still runs and release resources."""


_REGISTRY: dict[str, Callable[..., Executor]] = {}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    """Make an executor available by name (``local``; later ``slurm``, ``htcondor``)."""
    _REGISTRY[name] = factory


def available_executors() -> list[str]:
    """Names of the registered executors."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_executor(name: str, **options: Any) -> Executor:
    """Create the executor registered as ``name`` with its options.

    Example:
        >>> ex = get_executor("local", slots=2)
    """
    _load_builtins()
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown executor {name!r} (known executors: {known})")
    return _REGISTRY[name](**options)


def _load_builtins() -> None:
    import jaas.kup.executors.htcondor
    import jaas.kup.executors.local
    import jaas.kup.executors.slurm  # noqa: F401 - each registers itself
