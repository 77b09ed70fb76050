"""A real Spark standalone master with two one-core workers (started by the fixture):
identical results to the local engine, pairs across the executor boundary found once,
an executor killed mid-query changes nothing (Spark retries its tasks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import jaas
from jaas.engine.session.analysis import coincidence
from jaas.engine.session.cache import ColumnCache
from tests.cluster._compare import assert_identical
from tests.spark.conftest import Standalone
from tests.spark.test_local import QUERY

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark(standalone: Standalone) -> Iterator[object]:
    from jaas.spark import SparkBackend

    backend = SparkBackend(standalone.master_url)
    try:
        yield backend
    finally:
        backend.close()


def _where(info: jaas.engine.session.backend.BackendInfo, t: np.ndarray) -> np.ndarray:
    lo = np.array([p[1] for p in info.partitions], np.int64)
    k = np.searchsorted(lo, t, side="right") - 1
    return np.array([info.partitions[i][3] for i in k])


def test_identical_to_local_and_pairs_across_executors_found_once(
    spark: object, standalone: Standalone, sim_dir: Path
) -> None:
    ds = jaas.open(sim_dir, cache=ColumnCache())
    ref = coincidence(ds, **QUERY)  # type: ignore[arg-type]
    res = coincidence(ds, backend=standalone.master_url, partition_events=150, **QUERY)  # type: ignore[arg-type]
    assert_identical(res, ref)
    info = res.backend_info
    assert info.name == "spark" and info.address == standalone.master_url
    assert len({w for *_, w in info.partitions}) >= 2, info.partitions  # both executors ran
    t = res.columns["t"]
    wp, wd = _where(info, t[res.result.prompt]), _where(info, t[res.result.delayed])
    assert (wp != wd).any(), "expected a pair across the executor boundary"
    pairs = set(zip(res.result.prompt.tolist(), res.result.delayed.tolist(), strict=True))
    assert len(pairs) == res.n_pairs == ref.n_pairs
    ibd = ds.ibd(backend=spark)  # type: ignore[arg-type]
    assert_identical(ibd, jaas.ibd(ds))


def test_executor_killed_mid_query_gives_the_identical_result(
    spark: object, standalone: Standalone, sim_dir: Path
) -> None:
    from jaas.spark import SparkBackend

    assert isinstance(spark, SparkBackend)
    ds = jaas.open(sim_dir, cache=ColumnCache())
    ref = coincidence(ds, **QUERY)  # type: ignore[arg-type]
    victims = standalone.executor_pids()
    assert len(victims) == 2, victims
    seen: list[tuple[int, int]] = []
    killed: list[tuple[int, int]] = []

    def kill_when_started() -> None:
        import os
        import signal

        deadline = time.monotonic() + 120
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(victims[0], signal.SIGKILL)
        killed.append(seen[-1] if seen else (0, 0))

    spark.on_progress = lambda done, total: seen.append((done, total))
    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    try:
        res = coincidence(ds, backend=spark, partition_events=60, **QUERY)  # type: ignore[arg-type]
    finally:
        spark.on_progress = None
        killer.join()
    assert killed and killed[0][0] < killed[0][1], killed  # killed while tasks remained
    assert seen[-1][0] == seen[-1][1]
    assert_identical(res, ref)
