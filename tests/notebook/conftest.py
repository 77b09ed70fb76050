"""A small seeded simulated run shared by the notebook tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import jaas
from jaas.engine.session.cache import ColumnCache
from jaas.sim import SimConfig, simulate


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nb-sim")
    cfg = SimConfig(run=1, duration_s=3600, seed=5, mode="index", scale={"reactor_ibd": 40.0})
    simulate(cfg, out)
    return out


@pytest.fixture(scope="session")
def ds(sim_dir: Path) -> jaas.Dataset:
    return jaas.open(sim_dir, cache=ColumnCache())


@pytest.fixture(scope="session")
def ibd_result(ds: jaas.Dataset):  # type: ignore[no-untyped-def]
    return ds.ibd()
