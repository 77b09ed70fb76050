"""The Spark backend in ``local[N]`` mode: identical results to the local engine, the
backend chosen by its master URL, the executor column cache, progress, clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import jaas
from jaas.engine.core.correlate import OffTime
from jaas.engine.session.analysis import coincidence, veto
from jaas.engine.session.cache import ColumnCache
from tests.cluster._compare import assert_identical
from tests.spark.conftest import SECOND

pytestmark = pytest.mark.spark

# pairs within 300 ms, a 2.5 s veto after showering muons: longer than 1 s partitions,
# so a partition's halo reaches into the files of several neighbouring partitions
QUERY = {
    "prompt": "E > 0.5 MeV and not muon",
    "delayed": "E > 1 MeV and not muon",
    "dt": "300 ms",
    "mode": "all",
    "vetoes": [
        veto("detector", "muon", "1 ms", name="mu"),
        veto("detector", "muon and showering", "2.5 s", name="shower"),
    ],
    "offtime": OffTime(n=5, start_ns=SECOND),
    "since": {"t_mu": "muon"},
}


@pytest.fixture(scope="module")
def spark(spark_home: str) -> Iterator[object]:
    from jaas.spark import SparkBackend

    backend = SparkBackend("local[2]")
    try:
        yield backend
    finally:
        backend.close()


def _open(sim_dir: Path) -> jaas.Dataset:
    return jaas.open(sim_dir, cache=ColumnCache())


def test_identical_to_local_with_halo_longer_than_partitions(spark: object, sim_dir: Path) -> None:
    from jaas.spark import SparkBackend

    assert isinstance(spark, SparkBackend)
    ds = _open(sim_dir)
    ref = coincidence(ds, **QUERY)  # type: ignore[arg-type]
    spark.partition_ns = SECOND
    try:
        res = coincidence(ds, backend=spark, **QUERY)  # type: ignore[arg-type]
    finally:
        spark.partition_ns = None
    assert_identical(res, ref)
    assert res.n_pairs > 100
    assert res.exposure.veto_ns > 10 * SECOND  # the long veto matters
    info = res.backend_info
    assert info.name == "spark" and info.address == "local[2]"
    assert len(info.partitions) >= 50
    before, _ = res.spec.halo()
    assert before > 2 * SECOND
    # every pair is found once although partitions cut through pairs
    lo = np.array([p[1] for p in info.partitions])
    t = res.columns["t"]
    kp = np.searchsorted(lo, t[res.result.prompt], side="right")
    kd = np.searchsorted(lo, t[res.result.delayed], side="right")
    assert (kp != kd).any(), "expected pairs across partition boundaries"
    pairs = set(zip(res.result.prompt.tolist(), res.result.delayed.tolist(), strict=True))
    assert len(pairs) == res.n_pairs


def test_ibd_by_master_url_with_volume_vetoes_and_truth(spark: object, sim_dir: Path) -> None:
    ds = _open(sim_dir)
    ref = jaas.ibd(ds)
    res = ds.ibd(backend="local[2]")  # the registry picks Spark for a local[N] master
    assert_identical(res, ref)
    assert res.backend_info.name == "spark"
    assert (
        res.exposure.mc_samples > 0 and res.exposure.mc_pass_by_veto == ref.exposure.mc_pass_by_veto
    )
    assert res.truth() is not None
    assert res.provenance["backend"].startswith("spark local[2]")
    assert spark.sc._jsc is not None  # type: ignore[attr-defined]  # still running: not ours to stop


def test_random_partitionings_give_the_local_result(spark: object, sim_dir: Path) -> None:
    from jaas.spark import SparkBackend

    assert isinstance(spark, SparkBackend)
    ds = _open(sim_dir)
    ref = coincidence(ds, **QUERY)  # type: ignore[arg-type]
    rng = np.random.default_rng(14)
    for _ in range(2):
        events = None
        if rng.random() < 0.5:
            spark.partition_ns = int(rng.integers(SECOND, 20 * SECOND))
        else:
            events = int(rng.integers(40, 400))
        try:
            res = coincidence(ds, backend=spark, partition_events=events, **QUERY)  # type: ignore[arg-type]
        finally:
            spark.partition_ns = None
        assert_identical(res, ref)


def test_cli_ibd_on_spark(spark: object, sim_dir: Path) -> None:
    from click.testing import CliRunner

    from jaas.cli.analysis import ibd as ibd_cli

    res = CliRunner().invoke(ibd_cli, [str(sim_dir), "--backend", "local[2]"])
    assert res.exit_code == 0, res.output
    local = CliRunner().invoke(ibd_cli, [str(sim_dir)])

    def summary(text: str) -> list[str]:  # without the timestamp and cache/timing lines
        return [x for x in text.splitlines() if not x.startswith(("provenance", "cache:"))]

    assert summary(res.output) == summary(local.output)
    assert "pairs" in res.output


def test_bad_masters_are_refused_in_one_line(spark: object) -> None:
    from jaas.spark import SparkBackend

    with pytest.raises(jaas.ConfigError, match=r"already runs Spark on local\[2\]"):
        SparkBackend("local[3]")
    with pytest.raises(jaas.ConfigError, match="not a Spark master"):
        SparkBackend("yarn-ish")
    handle = jaas.connect("local[2]")  # the running context, shared: usable as backend=
    assert isinstance(handle, SparkBackend) and repr(handle).startswith("<jaas.SparkBackend")
    handle.close()
    assert spark.sc._jsc is not None  # type: ignore[attr-defined]  # not stopped by a handle


def test_events_and_truth_of_a_spark_result_equal_local(
    spark: object, sim_dir: Path, tmp_path: Path
) -> None:
    """``res.events()`` (the index -> full event redirect, here to ESD files written from
    the index rows) and ``res.truth()`` of a Spark result equal the local engine's."""
    import pandas as pd

    from jaas.formats.esd import ESD_COLUMNS, write_esd
    from jaas.formats.index import read_index

    ds = _open(sim_dir)
    paths = {}
    for k, f in enumerate(ds.files):
        table = read_index(f.path).sort_by("entry")
        cols = {n: table.column(n).to_numpy() for n in table.column_names if n in ESD_COLUMNS}
        cols["event_id"] = table.column("entry").to_numpy().astype(np.uint64)
        cols["nhit"] = np.zeros(table.num_rows, np.int32)
        assert (table.column("entry").to_numpy() == np.arange(table.num_rows)).all()
        out = tmp_path / f"f{k}.esd.root"
        write_esd(cols, out, meta={"run": 1, "file_seq": k, "parent": ""})
        (file_id,) = set(table.column("file_id").to_numpy().tolist())
        paths[int(file_id)] = (str(out), None)
    ref = jaas.ibd(ds)
    res = ds.ibd(backend=spark)  # type: ignore[arg-type]
    assert res.n_pairs == ref.n_pairs > 0
    got = res.events(paths=paths, with_hits=False)
    want = ref.events(paths=paths, with_hits=False)
    pd.testing.assert_frame_equal(got.esd, want.esd)
    assert len(got) == 2 * res.n_pairs
    np.testing.assert_array_equal(got.esd["t"][: res.n_pairs], res.pairs["prompt_t"])
    assert str(res.truth()) == str(ref.truth())
