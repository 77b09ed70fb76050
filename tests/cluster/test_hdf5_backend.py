"""HDF5 index files through the Dask cluster backend: the same pairs as the local engine
(issue 15, item 19)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.cluster._compare import assert_identical
from tests.cluster.conftest import SECOND

import jaas
from jaas.cluster import Cluster, coincidence
from jaas.engine.session.analysis import coincidence as local_coincidence
from jaas.engine.session.cache import ColumnCache
from jaas.formats.index import index_metadata, is_hdf5, read_index, write_index

QUERY = {"prompt": "E > 0.7 MeV and not muon", "delayed": "E > 1.5 MeV and not muon",
         "dt": "1 ms", "mode": "all"}  # fmt: skip


def _as_hdf5(sim_dir: Path, out: Path) -> Path:
    """The simulated run with every index file rewritten as HDF5 (same rows, metadata)."""
    (out / "index").mkdir(parents=True)
    shutil.copy(next(sim_dir.glob("run*.json")), out)
    for p in sorted((sim_dir / "index").glob("*.parquet")):
        write_index(read_index(p), out / "index" / f"{p.stem}.h5", fmt="hdf5",
                    metadata=index_metadata(p))  # fmt: skip
    return out


def test_hdf5_dataset_gives_the_same_pairs_on_the_cluster(
    handle: Cluster, sim_dir: Path, tmp_path: Path
) -> None:
    h5 = _as_hdf5(sim_dir, tmp_path / "h5run")
    ds = jaas.open(h5, cache=ColumnCache())
    assert ds.files and all(is_hdf5(f.path) for f in ds.files)
    ref = local_coincidence(jaas.open(sim_dir, cache=ColumnCache()), **QUERY)  # type: ignore[arg-type]
    local = local_coincidence(ds, **QUERY)  # type: ignore[arg-type]
    dist = coincidence(ds, client=handle, partition_ns=2 * SECOND, **QUERY)  # type: ignore[arg-type]
    assert_identical(local, ref)  # HDF5 and Parquet hold the same events
    assert_identical(dist, local)
    assert dist.n_pairs > 20
    assert len({w for *_, w in dist.backend_info.partitions}) == 2  # both workers ran
