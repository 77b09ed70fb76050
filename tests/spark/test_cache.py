"""Columns kept in executor memory: a persisted RDD of the files' columns, one Spark
partition per file, shared by every executor and Python worker of the SparkContext."""

from __future__ import annotations

from pathlib import Path

import pytest

import jaas
from jaas.engine.session.analysis import coincidence
from jaas.engine.session.cache import ColumnCache
from tests.cluster._compare import assert_identical
from tests.spark.test_local import QUERY

pytestmark = pytest.mark.spark


def test_second_query_with_new_cuts_reads_no_file(spark_home: str, sim_dir: Path) -> None:
    """Two Python workers (local[2]) and many partitions: the first query reads every
    file once, a second one with new cuts reads nothing (counted by the executors'
    read accumulators), a new column reads the files once more; results stay exact."""
    from jaas.spark import SparkBackend

    ds = jaas.open(sim_dir, cache=ColumnCache())
    n_files = len(ds.files)
    with SparkBackend("local[2]") as spark:
        first = coincidence(ds, backend=spark, partition_events=70, **QUERY)  # type: ignore[arg-type]
        assert spark.last_files_read == n_files
        assert spark.last_bytes_read >= 8 * ds.n_events  # "t" at least
        changed = dict(QUERY, delayed="E > 1.5 MeV and not muon", dt="200 ms")
        again = coincidence(ds, backend=spark, partition_events=50, **changed)  # type: ignore[arg-type]
        assert (spark.last_files_read, spark.last_bytes_read) == (0, 0)
        assert len({w for *_, w in again.backend_info.partitions}) >= 2  # both workers ran
        assert_identical(again, coincidence(ds, **changed))  # type: ignore[arg-type]
        assert again.n_pairs < first.n_pairs
        wider = dict(changed, prompt="E > 0.5 MeV and not muon and pe > 0")
        coincidence(ds, backend=spark, **wider)  # type: ignore[arg-type]
        assert spark.last_files_read == n_files  # a new column: read once more
        coincidence(ds, backend=spark, **changed)  # type: ignore[arg-type]
        assert spark.last_files_read == 0  # the wider set serves the narrower query
