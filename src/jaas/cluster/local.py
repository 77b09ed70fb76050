"""A Dask cluster of real processes on this machine: one scheduler, N workers.

``start`` launches ``dask scheduler`` (with the jaas registry preloaded) and N
``dask worker`` processes (no nanny: the process is the worker, its column cache lives
in it) in their own sessions, so they outlive the command that started them, and
records their process ids in a state directory; ``stop`` ends exactly those processes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jaas._daemons import Daemons
from jaas.cluster.client import state_dir as default_state_dir
from jaas.errors import ConfigError, JaasError

__all__ = ["LocalCluster", "start", "stop"]


@dataclass
class LocalCluster:
    """What ``start`` launched: addresses and process ids."""

    address: str
    dashboard: str
    scheduler_pid: int
    worker_pids: list[int]
    state_dir: str

    def save(self) -> None:
        path = Path(self.state_dir) / "cluster.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)


_DAEMONS = Daemons(b"distributed.cli")  # the Dask processes started and stopped here
_spawn = _DAEMONS.spawn


def _wait_for(cond: object, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise JaasError(f"{what} did not start within {timeout:.0f} s; log {log}:\n{tail}")


def start(
    workers: int = 2,
    *,
    threads_per_worker: int = 1,
    memory_limit: str = "auto",
    host: str = "127.0.0.1",
    port: int = 0,
    dashboard: bool = True,
    state_dir: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> LocalCluster:
    """Start a scheduler and ``workers`` worker processes; return when all are connected.

    Args:
        workers: number of worker processes.
        threads_per_worker: threads of each worker (partitions run in parallel).
        memory_limit: per worker (``"4GiB"``, ``"auto"``); the column cache takes half.
        host, port: scheduler address (port 0: a free one).
        dashboard: serve the Dask dashboard (needs bokeh) on a free port.
        state_dir: where addresses, pids and logs go (default ``~/.jaas/cluster``).

    Example:
        >>> lc = start(2, state_dir="/tmp/jc")     # doctest: +SKIP
        >>> lc.address                             # doctest: +SKIP
        'tcp://127.0.0.1:40123'
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    sdir = Path(state_dir) if state_dir is not None else default_state_dir()
    sdir.mkdir(parents=True, exist_ok=True)
    if (sdir / "cluster.json").exists() and _alive(_load(sdir)):
        raise ConfigError(f"a cluster is already running from {sdir}; `jaas cluster down` first")
    sched_file = sdir / "scheduler.json"
    sched_file.unlink(missing_ok=True)
    env = dict(os.environ)
    py = sys.executable
    dash = ["--dashboard-address", f"{host}:0"] if dashboard else ["--no-dashboard"]
    sched = _spawn(
        [py, "-m", "distributed.cli.dask_scheduler", "--host", host, "--port", str(port),
         "--scheduler-file", str(sched_file), "--preload", "jaas.cluster.registry", *dash],
        sdir / "scheduler.log", env,
    )  # fmt: skip
    pids: list[int] = []
    try:
        _wait_for(lambda: _address(sched_file), timeout, "the scheduler", sdir / "scheduler.log")
        for i in range(workers):
            w = _spawn(
                [py, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
                 "--host", host, "--nthreads", str(threads_per_worker),
                 "--memory-limit", str(memory_limit), "--no-nanny", "--name", f"jaas-{i}",
                 "--preload", "jaas.cluster.worker", "--no-dashboard"],
                sdir / f"worker-{i}.log", env,
            )  # fmt: skip
            pids.append(w.pid)
        address = _address(sched_file)
        from distributed import Client

        with Client(address, timeout=timeout, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=timeout)
            link = client.dashboard_link if dashboard else ""
    except BaseException:
        _kill(*pids, sched.pid)
        raise
    lc = LocalCluster(address, link, sched.pid, pids, str(sdir))
    lc.save()
    return lc


def _address(sched_file: Path) -> str:
    """The scheduler's address once its file is completely written, else ""."""
    try:
        return str(json.loads(sched_file.read_text())["address"])
    except (OSError, ValueError, KeyError):
        return ""


def _load(sdir: Path) -> LocalCluster:
    return LocalCluster(**json.loads((sdir / "cluster.json").read_text()))


_ours = _DAEMONS.ours


def _alive(lc: LocalCluster) -> bool:
    return any(_ours(p) for p in [lc.scheduler_pid, *lc.worker_pids])


_kill = _DAEMONS.kill
_running = _DAEMONS.running


def stop(state_dir: str | os.PathLike[str] | None = None) -> list[int]:
    """Stop the processes recorded by ``start`` (workers first); return their pids."""
    sdir = Path(state_dir) if state_dir is not None else default_state_dir()
    if not (sdir / "cluster.json").exists():
        raise ConfigError(f"no cluster recorded in {sdir}; nothing to stop")
    lc = _load(sdir)
    stopped = [p for p in [*lc.worker_pids, lc.scheduler_pid] if _running(p)]
    _kill(*lc.worker_pids)
    _kill(lc.scheduler_pid)
    (sdir / "cluster.json").unlink(missing_ok=True)
    (sdir / "scheduler.json").unlink(missing_ok=True)
    return stopped
