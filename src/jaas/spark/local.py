"""A Spark standalone cluster of real processes on this machine: one master, N workers.

``start`` launches the master and N workers of the Spark that ships with ``pyspark``
(``bin/spark-class``, Java 17) in their own sessions, so they outlive the command that
started them, waits until every worker has registered (the master's JSON status page)
and records the master URL and process ids in the state directory (``spark.json``);
``stop`` ends exactly those processes (their executors end with them).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jaas._daemons import Daemons
from jaas._io import atomic_path
from jaas.errors import ConfigError, JaasError
from jaas.settings import settings

__all__ = ["STATE_FILE", "SparkStandalone", "alive_workers", "recorded", "start", "stop"]

STATE_FILE = "spark.json"
MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


@dataclass
class SparkStandalone:
    """What ``start`` launched: the master URL, its status page and the process ids."""

    master_url: str
    ui_url: str
    master_pid: int
    worker_pids: list[int]
    state_dir: str

    def save(self) -> None:
        with atomic_path(Path(self.state_dir) / STATE_FILE) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2))

    def workers(self) -> list[dict[str, Any]]:
        """The master's live workers (id, host, cores, memory...)."""
        return alive_workers(self.ui_url)


def spark_home() -> str:
    """The Spark of the installed ``pyspark`` (needs ``java`` on PATH)."""
    from jaas.spark.backend import _pyspark

    home = os.path.dirname(_pyspark().__file__)
    if shutil.which("java") is None:
        raise ConfigError("Spark needs Java 17: apt-get install openjdk-17-jre-headless")
    return home


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def alive_workers(ui_url: str) -> list[dict[str, Any]]:
    """Workers the master at ``ui_url`` lists as ALIVE ([] if it does not answer)."""
    try:
        with urllib.request.urlopen(f"{ui_url}/json/", timeout=2) as r:
            state = json.load(r)
    except (OSError, ValueError):
        return []
    return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]


_DAEMONS = Daemons(b"org.apache.spark.deploy")  # the Spark processes started here


def _spawn(home: str, args: list[str], log: Path, env: dict[str, str]) -> int:
    return _DAEMONS.spawn([os.path.join(home, "bin", "spark-class"), *args], log, env).pid


def start(
    workers: int = 2,
    *,
    cores: int = 1,
    memory: str = "1g",
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
) -> SparkStandalone:
    """Start a standalone master and ``workers`` workers; return when all registered.

    Args:
        workers: worker processes (each starts one executor per application).
        cores, memory: per worker (``-c``, ``-m``).
        host, port: the master's address (port 0: a free one).
        state_dir: where the URL, pids and logs go (default ``~/.jaas/cluster``).

    Example:
        >>> sa = start(2, state_dir="/tmp/js")     # doctest: +SKIP
        >>> sa.master_url                          # doctest: +SKIP
        'spark://127.0.0.1:40123'
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    home = spark_home()
    sdir = Path(state_dir) if state_dir is not None else settings().cluster_dir
    sdir.mkdir(parents=True, exist_ok=True)
    if (sdir / STATE_FILE).exists() and _alive(recorded(sdir)):
        raise ConfigError(f"a Spark cluster is already running from {sdir}; `jaas cluster down`")
    port = port or _free_port(host)
    ui_port = _free_port(host)
    master_url, ui_url = f"spark://{host}:{port}", f"http://{host}:{ui_port}"
    env = {
        **os.environ,
        "SPARK_HOME": home,
        "SPARK_LOCAL_IP": host,
        "SPARK_LOG_DIR": str(sdir / "logs"),
        "PYSPARK_PYTHON": sys.executable,
    }
    log = sdir / "spark-master.log"
    master = _spawn(home, [MASTER, "--host", host, "--port", str(port),
                           "--webui-port", str(ui_port)], log, env)  # fmt: skip
    pids: list[int] = []
    try:
        for k in range(workers):
            work = sdir / f"spark-worker{k}"
            work.mkdir(exist_ok=True)
            pids.append(_spawn(home, [
                WORKER, "--host", host, "-c", str(cores), "-m", memory,
                "--webui-port", str(_free_port(host)), "-d", str(work), master_url,
            ], sdir / f"spark-worker{k}.log", env))  # fmt: skip
        deadline = time.monotonic() + timeout
        while len(alive_workers(ui_url)) < workers:
            dead = [p for p in [master, *pids] if not _running(p)]
            if dead or time.monotonic() > deadline:
                tails = {p.name: p.read_text(errors="replace")[-1500:]
                         for p in sdir.glob("spark-*.log")}  # fmt: skip
                why = f"process(es) {dead} exited" if dead else f"not within {timeout:.0f} s"
                raise JaasError(f"the Spark cluster did not start: {why}; logs: {tails}")
            time.sleep(0.5)
    except BaseException:
        _kill(*pids, master)
        raise
    sa = SparkStandalone(master_url, ui_url, master, pids, str(sdir))
    sa.save()
    return sa


def recorded(state_dir: str | os.PathLike[str] | None = None) -> SparkStandalone:
    """The cluster ``start`` recorded in ``state_dir``.

    Raises:
        ConfigError: none recorded there.
    """
    sdir = Path(state_dir) if state_dir is not None else settings().cluster_dir
    try:
        return SparkStandalone(**json.loads((sdir / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"no Spark cluster recorded in {sdir}") from exc


_running = _DAEMONS.running


def _alive(sa: SparkStandalone) -> bool:
    return any(_DAEMONS.ours(p) for p in [sa.master_pid, *sa.worker_pids])


def _kill(*pids: int) -> None:
    _DAEMONS.kill(*pids, grace=15.0)  # a worker takes a while to stop its executors


def stop(state_dir: str | os.PathLike[str] | None = None) -> list[int]:
    """Stop the processes recorded by ``start`` (workers first); return their pids."""
    sa = recorded(state_dir)
    stopped = [p for p in [*sa.worker_pids, sa.master_pid] if _running(p)]
    _kill(*sa.worker_pids)
    _kill(sa.master_pid)
    (Path(sa.state_dir) / STATE_FILE).unlink(missing_ok=True)
    return stopped
