"""The executor's column cache: kept in the reused Python worker across queries."""

from __future__ import annotations

from pathlib import Path

import pytest

import jaas
from jaas.engine.session.analysis import coincidence
from jaas.engine.session.cache import ColumnCache
from tests.spark.test_local import QUERY

pytestmark = pytest.mark.spark


def test_second_query_reads_nothing_and_a_new_cut_only_its_mask(
    spark_home: str, sim_dir: Path
) -> None:
    """One Python worker (local[1]): a second query reads no file; a new cut computes
    only its mask (1 byte per event), no index column is read again."""
    from jaas.spark import SparkBackend

    ds = jaas.open(sim_dir, cache=ColumnCache())
    with SparkBackend("local[1]") as one:
        first = coincidence(ds, backend=one, **QUERY)  # type: ignore[arg-type]
        assert one.last_bytes_read > ds.n_events
        again = coincidence(ds, backend=one, **QUERY)  # type: ignore[arg-type]
        assert (one.last_bytes_read, one.last_misses) == (0, 0)
        assert again.n_pairs == first.n_pairs
        changed = dict(QUERY, delayed="E > 1.5 MeV and not muon")
        coincidence(ds, backend=one, **changed)  # type: ignore[arg-type]
        assert one.last_bytes_read == ds.n_events
