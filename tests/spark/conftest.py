"""Fixtures: pyspark and Java (required under CI=true), a simulated dataset, and a real
Spark standalone master with two one-core workers on loopback."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jaas.sim import SimConfig, simulate

if TYPE_CHECKING:
    from jaas.spark.local import SparkStandalone

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


class Standalone:
    """A Spark standalone master and its workers, started by ``jaas.spark.local``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sa: SparkStandalone | None = None

    @property
    def master_url(self) -> str:
        assert self.sa is not None
        return self.sa.master_url

    def start(self, n_workers: int = 2) -> None:
        from jaas.spark.local import start

        self.sa = start(n_workers, state_dir=self.root)

    def executor_pids(self) -> list[int]:
        """Pids of the executor JVMs our workers started (their child processes)."""
        import psutil

        assert self.sa is not None
        pids = []
        for w in self.sa.worker_pids:
            try:
                children = psutil.Process(w).children(recursive=True)
            except psutil.Error:
                continue
            for c in children:
                try:
                    if "CoarseGrainedExecutorBackend" in " ".join(c.cmdline()):
                        pids.append(c.pid)
                except psutil.Error:  # a finished child (zombie) or gone
                    continue
        return pids

    def stop(self) -> None:
        from jaas.spark.local import stop

        if self.sa is not None:
            stop(self.root)


@pytest.fixture(scope="module")
def standalone(spark_home: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A real standalone master with two 1-core workers; stopped at the end, also on failure."""
    cluster = Standalone(tmp_path_factory.mktemp("spark-standalone"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
