"""Replication between real XRootD servers (third-party copy) with injected faults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jaas.store.catalog import Catalog
from jaas.transfer.config import parse_topology
from jaas.transfer.errors import TransferFailure
from jaas.transfer.replicator import Replicator, lfn_for

from .conftest import FakeClock
from .xrd import Server, SiteNetwork, SiteServer
from .xrd import xrootd_network as xrootd_network
from .xrd import xrootd_sites as xrootd_sites

pytestmark = pytest.mark.slow


def _setup(
    servers: dict[str, Server], catalog: Catalog, clock: FakeClock, tmp_path: Path, n: int
) -> tuple[Replicator, list[int]]:
    sites = "\n".join(
        f"  {name}: {{root: '{s.root}', intermediate: {str(name == 'CNAF').lower()}}}"
        for name, s in servers.items()
    )
    topo = parse_topology(
        "sites:\n" + sites + "\nrules:\n"
        "  - {name: t1, kind: raw, copies: 3, sites: [CNAF, JINR, IN2P3]}\n"
    )
    storages = {name: s.storage() for name, s in servers.items()}
    rep = Replicator(catalog, topo, storages=storages, clock=clock)  # type: ignore[arg-type]
    ids = []
    for seq in range(n):
        local = tmp_path / f"run21.{seq:03d}.raw"
        local.write_bytes(os.urandom(256 * 1024))
        rec = catalog.add_file(local, kind="raw", run=21, seq=seq)
        storages["CENTRAL"].upload(local, lfn_for(rec))
        rep.add_source(rec, "CENTRAL")
        ids.append(rec.id)
    return rep, ids


def test_storage_interface_against_a_real_server(
    xrootd_sites: dict[str, Server],
    tmp_path: Path,
) -> None:
    st = xrootd_sites["CNAF"].storage()
    local = tmp_path / "f.bin"
    local.write_bytes(b"hello xrootd\n")
    assert st.stat("raw/f.bin") is None
    st.upload(local, "raw/f.bin")
    assert st.stat("raw/f.bin") == 13
    from jaas.transfer.checksum import adler32_file

    assert st.checksum("raw/f.bin") == adler32_file(local)
    back = tmp_path / "back.bin"
    st.download("raw/f.bin", back)
    assert back.read_bytes() == local.read_bytes()
    st.delete("raw/f.bin")
    assert st.stat("raw/f.bin") is None
    with pytest.raises(TransferFailure) as info:
        st.checksum("raw/f.bin")
    assert info.value.error_class == "not_found" and info.value.permanent


def test_parallel_tpc_replication_to_three_tier1s_then_flipped_bytes_are_recopied(
    xrootd_sites: dict[str, Server],
    catalog: Catalog,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    rep, ids = _setup(xrootd_sites, catalog, clock, tmp_path, n=4)
    rep.parallel = 4
    assert rep.apply_rules() == 12
    rep.run(advance=clock.advance)
    reqs = rep.ledger.requests()
    assert {r.state for r in reqs} == {"done"} and all(r.attempts == 0 for r in reqs)
    assert 2 <= rep.limits.peak["*"] <= 4  # copies ran at once, never more than the pool
    for fid in ids:
        ok = {r.site: r.checksum for r in rep.ledger.replicas(fid) if r.status == "ok"}
        assert set(ok) == {"CENTRAL", "CNAF", "JINR", "IN2P3"}
        lfn = lfn_for(catalog.get_file(fid))
        assert all(xrootd_sites[s].storage().checksum(lfn) == ok[s] for s in ok)
        urls = {r.endpoint: r.url for r in catalog.replicas(fid)}
        assert urls["JINR"].startswith(f"root://127.0.0.1:{xrootd_sites['JINR'].port}/")
    # flip one byte of the JINR copy on the server's disk
    req = rep.ledger.find(ids[0], "JINR")
    disk = xrootd_sites["JINR"].dir / "data" / req.lfn
    data = bytearray(disk.read_bytes())
    data[1000] ^= 0x01
    disk.write_bytes(bytes(data))
    assert rep.audit("JINR") == [(ids[0], "JINR")]
    assert rep.ledger.replica(ids[0], "JINR").status == "quarantined"
    rep.run(advance=clock.advance)
    assert rep.ledger.replica(ids[0], "JINR").status == "ok"
    assert rep.audit() == []


def test_server_killed_mid_replication_retries_then_completes(
    xrootd_sites: dict[str, Server],
    catalog: Catalog,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    rep, ids = _setup(xrootd_sites, catalog, clock, tmp_path, n=1)
    rep.apply_rules()
    xrootd_sites["IN2P3"].kill()
    rep.run_once()
    req = rep.ledger.find(ids[0], "IN2P3")
    assert req.state == "retrying"
    [att] = rep.ledger.attempts(req.id)
    assert att.error_class in ("connection", "timeout", "link_down")
    assert rep.ledger.replica(ids[0], "CENTRAL").status == "ok"  # source untouched
    xrootd_sites["IN2P3"].start()
    rep.run(advance=clock.advance)
    assert rep.ledger.find(ids[0], "IN2P3").state == "done"
    assert {r.state for r in rep.ledger.requests()} == {"done"}


def test_cut_direct_link_goes_through_cnaf_between_namespaces(
    xrootd_network: tuple[SiteNetwork, dict[str, SiteServer]],
    catalog: Catalog,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    net, servers = xrootd_network
    net.cut("CENTRAL", "JINR")  # a firewall rule: JINR's packets to CENTRAL:1094 are dropped
    rep, ids = _setup(servers, catalog, clock, tmp_path, n=1)  # type: ignore[arg-type]
    rep.topo = parse_topology(
        "sites:\n"
        + "\n".join(
            f"  {n}: {{root: '{s.root}', intermediate: {str(n == 'CNAF').lower()}}}"
            for n, s in servers.items()
        )
        + "\nrules:\n  - {name: t1, kind: raw, copies: 1, sites: [JINR]}\n"
    )
    rep.apply_rules()
    rep.run(advance=clock.advance)
    req = rep.ledger.find(ids[0], "JINR")
    assert req.state == "done"
    atts = rep.ledger.attempts(req.id)
    assert atts[0].hop == "CENTRAL -> JINR" and not atts[0].ok
    assert rep.ledger.replica(ids[0], "JINR").route == "CENTRAL -> CNAF -> JINR"
    assert rep.ledger.replica(ids[0], "CNAF") is None  # hop copy removed
    assert rep.ledger.replica(ids[0], "CENTRAL").status == "ok"
    assert net.dropped("JINR") > 0  # the direct attempt really hit the firewall


def test_intake_to_a_killed_central_server_keeps_the_source_until_safe(
    xrootd_sites: dict[str, Server],
    catalog: Catalog,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    from jaas.transfer.intake import intake_dropbox

    rep, _ = _setup(xrootd_sites, catalog, clock, tmp_path, n=0)
    dropbox = tmp_path / "dropbox"
    dropbox.mkdir()
    (dropbox / "run30.000.raw").write_bytes(os.urandom(100_000))
    (dropbox / "run30.000.raw.done").write_text("")
    xrootd_sites["CENTRAL"].kill()
    [res] = intake_dropbox(dropbox, rep, central="CENTRAL")
    assert not res.ok and "connection" in res.message
    assert (dropbox / "run30.000.raw").exists() and catalog.files(run=30) == []
    xrootd_sites["CENTRAL"].start()
    [res] = intake_dropbox(dropbox, rep, central="CENTRAL")
    assert res.ok and not (dropbox / "run30.000.raw").exists()
    [rec] = catalog.files(run=30)
    assert rec.path.startswith("root://127.0.0.1:") and rec.adler32 == res.checksum
    assert xrootd_sites["CENTRAL"].storage().checksum(lfn_for(rec)) == res.checksum


def test_destination_killed_during_the_hop_is_retried_after_restart(
    xrootd_sites: dict[str, Server],
    catalog: Catalog,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    rep, ids = _setup(xrootd_sites, catalog, clock, tmp_path, n=1)
    killed: list[str] = []

    def kill_once(src: str, dst: str, lfn: str) -> None:
        if dst == "JINR" and not killed:  # after the source check, as the copy starts
            killed.append(dst)
            xrootd_sites["JINR"].kill()

    rep.faults = kill_once
    rep.apply_rules()
    rep.run_once()
    req = rep.ledger.find(ids[0], "JINR")
    assert req.state == "retrying" and killed == ["JINR"]
    [att] = [a for a in rep.ledger.attempts(req.id) if not a.ok]
    assert att.hop.endswith("-> JINR") and att.error_class in ("connection", "timeout", "unknown")
    xrootd_sites["JINR"].start()
    rep.run(advance=clock.advance)
    assert {r.state for r in rep.ledger.requests()} == {"done"}
    assert rep.audit() == []
