"""Several hops at once: a bounded pool held to per-site and per-link limits."""

from __future__ import annotations

import threading
import time
import zlib
from pathlib import Path

import pytest

from jaas.errors import ConfigError
from jaas.store.catalog import Catalog
from jaas.transfer.config import parse_topology
from jaas.transfer.errors import TransferFailure
from jaas.transfer.replicator import Replicator

from .conftest import FakeClock, add_raw_files


def _topology(root: Path, parallel: int) -> str:
    return f"""
parallel: {parallel}
sites:
  CENTRAL: {{root: {root / "central"}, intermediate: true}}
  CNAF: {{root: {root / "cnaf"}, intermediate: true}}
  JINR: {{root: {root / "jinr"}, max_active: 2}}
  IN2P3: {{root: {root / "in2p3"}}}
links:
  - {{from: CENTRAL, to: JINR, disabled: true}}
  - {{from: CENTRAL, to: IN2P3, max_active: 1}}
rules:
  - {{name: t1, kind: raw, copies: 3, sites: [CNAF, JINR, IN2P3]}}
"""


def test_many_files_in_parallel_end_done_with_consistent_attempts(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    topo = parse_topology(_topology(tmp_path, 4), tmp_path / "sites.yaml")
    lock = threading.Lock()
    now = {"active": 0, "peak": 0}

    def faults(src: str, dst: str, lfn: str) -> None:
        with lock:
            now["active"] += 1
            now["peak"] = max(now["peak"], now["active"])
        time.sleep(0.01)  # copies overlap
        with lock:
            now["active"] -= 1
        # about a fifth of the first tries of a hop fail: the same on every run
        if zlib.crc32(f"{src}{dst}{lfn}".encode()) % 5 == 0 and (src, dst, lfn) not in seen:
            seen.add((src, dst, lfn))
            raise TransferFailure("connection timed out", "timeout")

    seen: set[tuple[str, str, str]] = set()
    rep = Replicator(catalog, topo, clock=clock, faults=faults)
    assert rep.parallel == 4
    ids = add_raw_files(rep, tmp_path, run=50, n=30, size=2048)
    assert rep.apply_rules() == 90
    rep.run(advance=clock.advance)
    reqs = rep.ledger.requests()
    assert len(reqs) == 90 and {r.state for r in reqs} == {"done"}
    for req in reqs:
        atts = rep.ledger.attempts(req.id)
        # every failure counted once; a done request ends with a good copy (or found one
        # already there: a hop copy another request left at its destination)
        assert req.attempts == len([a for a in atts if not a.ok]), req
        assert req.wait_reason is None
        rep_row = rep.ledger.replica(req.file_id, req.dest)
        assert rep_row is not None and rep_row.status == "ok" and rep_row.checksum == req.checksum
        assert (tmp_path / req.dest.lower() / req.lfn).stat().st_size == 2048
    for fid in ids:
        ok = {r.site for r in rep.ledger.replicas(fid) if r.status == "ok"}
        assert ok == {"CENTRAL", "CNAF", "JINR", "IN2P3"}
        assert {r.site for r in rep.ledger.replicas(fid)} == ok  # no temporary copy left
        assert "CENTRAL -> JINR" not in rep.ledger.replica(fid, "JINR").route  # the link is cut
    assert seen  # failures were injected and retried
    assert 1 < now["peak"] <= 4  # several at once, never more than the pool
    assert rep.limits.peak["JINR"] <= 2 and rep.limits.peak[("CENTRAL", "IN2P3")] == 1
    assert sum(rep.limits.active.values()) == 0 and 1 < rep.limits.peak["*"] <= 4
    links = rep.ledger.link_quality()
    hops = sum(len(rep.ledger.attempts(r.id)) for r in reqs)
    assert sum(q.successes + q.failures for q in links.values()) == hops


def test_concurrency_limits_are_validated(tmp_path: Path) -> None:
    text = _topology(tmp_path, 0)
    with pytest.raises(ConfigError, match=r"sites.yaml:2: parallel: expected an integer >= 1"):
        parse_topology(text, tmp_path / "sites.yaml")
    text = _topology(tmp_path, 2).replace("max_active: 2", "max_active: two")
    with pytest.raises(ConfigError, match=r":6: sites.JINR.max_active: expected int"):
        parse_topology(text, tmp_path / "sites.yaml")
