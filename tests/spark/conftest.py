"""Fixtures: pyspark and Java (required under CI=true), a simulated dataset, and a real
Spark standalone master with two one-core workers on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jaas.sim import SimConfig, simulate

SECOND = 1_000_000_000


def _require() -> str:
    """SPARK_HOME (the pyspark package folder); skip, or FAIL under CI=true, if missing."""
    missing = []
    try:
        from jaas.spark.backend import _pyspark

        home = os.path.dirname(_pyspark().__file__)
    except Exception as exc:  # ConfigError: pyspark not installed
        missing.append(str(exc))
        home = ""
    if shutil.which("java") is None:
        missing.append("java (Debian openjdk-17-jre-headless)")
    if missing:
        msg = f"the Spark tests need: {'; '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return home


@pytest.fixture(scope="session")
def spark_home() -> str:
    return _require()


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of index-level events in 12 files (~5 s each)."""
    out = tmp_path_factory.mktemp("spark-sim")
    cfg = SimConfig(
        duration_s=60, seed=5, mode="index", scale={"reactor_ibd": 30}, max_events_per_file=100
    )
    simulate(cfg, out)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive_workers(ui_port: int) -> list[dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as r:
            state = json.load(r)
    except OSError:
        return []
    return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]


class Standalone:
    """A Spark standalone master and its worker processes (stopped by ``stop``)."""

    def __init__(self, home: str, root: Path) -> None:
        self.home, self.root = home, root
        self.port, self.ui_port = _free_port(), _free_port()
        self.master_url = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {
            **os.environ,
            "SPARK_HOME": home,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(root / "logs"),
            "PYSPARK_PYTHON": sys.executable,
        }
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, n_workers: int = 2) -> None:
        self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(self.ui_port))  # fmt: skip
        for k in range(n_workers):
            self.start_worker(k)
        self.wait_workers(n_workers)

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        cmd = [os.path.join(self.home, "bin", "spark-class"), *args]
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        log.close()
        self.procs.append(proc)
        return proc

    def start_worker(self, k: int) -> subprocess.Popen[bytes]:
        work = self.root / f"worker{k}"
        work.mkdir(exist_ok=True)
        proc = self._start(
            f"worker{k}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
            "-c", "1", "-m", "1g", "--webui-port", str(_free_port()), "-d", str(work),
            self.master_url,
        )  # fmt: skip
        self.workers.append(proc)
        return proc

    def wait_workers(self, n: int, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while len(_alive_workers(self.ui_port)) < n:
            if time.monotonic() > deadline:
                logs = {p.name: p.read_text()[-2000:] for p in self.root.glob("*.log")}
                raise AssertionError(f"Spark workers did not register: {logs}")
            time.sleep(0.5)

    def executor_pids(self) -> list[int]:
        """Pids of the executor JVMs our workers started (their child processes)."""
        import psutil

        pids = []
        for w in self.workers:
            if w.poll() is not None:
                continue
            for c in psutil.Process(w.pid).children(recursive=True):
                try:
                    if "CoarseGrainedExecutorBackend" in " ".join(c.cmdline()):
                        pids.append(c.pid)
                except psutil.Error:  # a finished child (zombie) or gone
                    continue
        return pids

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def standalone(spark_home: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A real standalone master with two 1-core workers; stopped at the end, also on failure."""
    cluster = Standalone(spark_home, tmp_path_factory.mktemp("spark-standalone"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
