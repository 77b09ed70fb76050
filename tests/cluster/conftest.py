"""Fixtures: a simulated dataset and a real scheduler with two worker processes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from click.testing import CliRunner

from jaas.cli.cluster import cluster as cluster_cli
from jaas.cluster import Cluster, connect
from jaas.sim import SimConfig, simulate

SECOND = 1_000_000_000


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 s of index-level events in 12 files (~5 s each)."""
    out = tmp_path_factory.mktemp("cluster-sim")
    cfg = SimConfig(
        duration_s=60,
        seed=5,
        mode="index",
        scale={"reactor_ibd": 30},
        max_events_per_file=100,
    )
    simulate(cfg, out)
    return out


@pytest.fixture(scope="session")
def cli_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """`jaas cluster up --workers 2` (real processes), `down` at the end, even on failure.

    Yields (scheduler address, `up` output, state directory).
    """
    state = tmp_path_factory.mktemp("cluster-state")
    runner = CliRunner()
    res = runner.invoke(cluster_cli, ["up", "--workers", "2", "--state-dir", str(state)])
    try:
        assert res.exit_code == 0, res.output
        m = re.search(r"scheduler\s+(tcp://\S+)", res.output)
        assert m is not None, res.output
        yield m.group(1), res.output, state
    finally:
        if (state / "cluster.json").exists():
            runner.invoke(cluster_cli, ["down", "--state-dir", str(state)])


@pytest.fixture(scope="session")
def handle(cli_cluster: tuple[str, str, Path]) -> Iterator[Cluster]:
    c = connect(cli_cluster[0])
    try:
        yield c
    finally:
        c.close()
