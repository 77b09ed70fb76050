"""Files unreadable on the executors (deleted or corrupt after the dataset was opened):
their time is reported as lost, exactly, and the rest equals the local engine on the
remaining files, as on Dask."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

import jaas
from jaas.engine.session.analysis import coincidence
from jaas.engine.session.cache import ColumnCache
from tests.spark.test_local import QUERY

pytestmark = pytest.mark.spark


def test_unreadable_files_are_lost_livetime_and_the_rest_is_exact(
    spark_home: str, sim_dir: Path, tmp_path: Path
) -> None:
    from jaas.spark import SparkBackend
    from jaas.spark.backend import LOST_REASON

    copy = tmp_path / "data"
    shutil.copytree(sim_dir, copy)
    ds = jaas.open(copy, cache=ColumnCache())
    files = ds.files
    gone, broken = 3, 8  # one deleted, one overwritten with garbage, after opening
    Path(files[gone].path).unlink()
    Path(files[broken].path).write_bytes(b"not parquet" * 100)
    with SparkBackend("local[2]") as spark:
        res = coincidence(ds, backend=spark, partition_events=80, **QUERY)  # type: ignore[arg-type]

    spans = [(files[i - 1].t_max + 1, files[i + 1].t_min) for i in (gone, broken)]
    assert [(x.start, x.end) for x in res.dataset.lost] == spans
    assert all(x.reason == LOST_REASON for x in res.dataset.lost)
    assert Path(files[gone].path).name in res.dataset.lost[0].what
    assert Path(files[broken].path).name in res.dataset.lost[1].what
    info = res.backend_info
    assert sorted(info.lost) == sorted(str(Path(files[i].path).absolute()) for i in (gone, broken))
    exp = res.exposure
    lost_ns = sum(b - a for a, b in spans)
    assert exp.bad_ns == lost_ns
    assert exp.span_ns == ds.segments[-1, 1] - ds.segments[0, 0]
    assert exp.good_ns == exp.span_ns - lost_ns

    # identical to the local engine on the readable files with the lost time cut out
    s0, s1 = int(ds.segments[0, 0]), int(ds.segments[-1, 1])
    edges = [s0, *[v for span in spans for v in span], s1]
    kept = dataclasses.replace(
        ds,
        files=[f for i, f in enumerate(files) if i not in (gone, broken)],
        segments=np.array(edges, np.int64).reshape(-1, 2),
        lost=res.dataset.lost,
        cache=ColumnCache(),
    )
    ref = coincidence(kept, **QUERY)  # type: ignore[arg-type]
    for name in ("prompt", "delayed", "veto_bits", "veto_intervals", "off_prompt"):
        np.testing.assert_array_equal(getattr(res.result, name), getattr(ref.result, name))
    assert exp.livetime_ns == ref.exposure.livetime_ns
    assert exp.veto_ns == ref.exposure.veto_ns
    assert res.n_pairs == ref.n_pairs > 0
