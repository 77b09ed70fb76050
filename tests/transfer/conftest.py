from __future__ import annotations

import os
from pathlib import Path

import pytest

from jaas.store.catalog import Catalog
from jaas.transfer.config import Topology, parse_topology
from jaas.transfer.replicator import Replicator, lfn_for


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def local_topology(root: Path, extra: str = "", rules: str | None = None) -> Topology:
    text = f"""
hop_penalty: 0.3
sites:
  CENTRAL: {{tier: 0, root: {root / "central"}, intermediate: true}}
  CNAF: {{tier: 1, root: {root / "cnaf"}, intermediate: true}}
  JINR: {{tier: 1, root: {root / "jinr"}}}
  IN2P3: {{tier: 1, root: {root / "in2p3"}}}
links:
{extra or "  []"}
rules:
{rules or "  - {name: raw-t1, kind: raw, copies: 3, sites: [CNAF, JINR, IN2P3], deadline_hours: 1}"}
"""
    text = text.replace("links:\n  []", "links: []")
    return parse_topology(text, root / "sites.yaml")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog(tmp_path / "catalog.db")
    yield cat
    cat.close()


def add_raw_files(rep: Replicator, root: Path, run: int, n: int, size: int = 4096) -> list[int]:
    """n files of run ``run`` written at CENTRAL, catalogued and recorded as its replicas."""
    ids = []
    for seq in range(n):
        name = f"run{run}.{seq:03d}.raw"
        path = root / "central" / "raw" / f"run{run}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        rec = rep.catalog.add_file(path, kind="raw", run=run, seq=seq)
        assert lfn_for(rec) == f"raw/run{run}/{name}"
        rep.add_source(rec, "CENTRAL")
        ids.append(rec.id)
    return ids
