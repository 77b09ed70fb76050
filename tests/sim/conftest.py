"""Shared simulated runs for the simulation tests (small, seeded, module-scoped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jaas.sim.run import SimSummary, simulate

# 6 h with the rare sources scaled up so that each has hundreds of groups
PHYSICS_RUN = {
    "run": 7,
    "seed": 12345,
    "duration_s": 6 * 3600.0,
    "scale": {"reactor_ibd": 100.0, "geo_ibd": 1000.0, "li9he8": 50.0, "bipo212": 2.0},
    "max_events_per_file": 200_000,
}


def read_all(folder: Path) -> pa.Table:
    """All Parquet files of ``folder`` concatenated in file order."""
    return pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob("*.parquet"))])


@pytest.fixture(scope="session")
def physics_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimSummary, dict, dict]:
    """(summary, truth columns, index columns) of PHYSICS_RUN, rows aligned."""
    out: Path = tmp_path_factory.mktemp("physics_run")
    summary = simulate(PHYSICS_RUN, out)
    truth = read_all(out / "truth").to_pandas()
    index = read_all(out / "index").to_pandas()
    t = {c: truth[c].to_numpy() for c in truth.columns}
    t["source"] = truth["source"].astype(str).to_numpy()
    t["role"] = truth["role"].astype(str).to_numpy()
    i = {c: index[c].to_numpy() for c in index.columns}
    assert np.array_equal(t["t"], i["t"])  # same events, same order
    return summary, t, i
