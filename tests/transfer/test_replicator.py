from __future__ import annotations

from pathlib import Path

from jaas.store.catalog import Catalog
from jaas.transfer.errors import TransferFailure
from jaas.transfer.replicator import Replicator

from .conftest import FakeClock, add_raw_files, local_topology


def test_every_raw_file_gets_three_verified_copies(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    rep = Replicator(catalog, local_topology(tmp_path), clock=clock)
    ids = add_raw_files(rep, tmp_path, run=12, n=3)
    assert rep.apply_rules() == 9
    assert rep.apply_rules() == 0  # idempotent
    rep.run(advance=clock.advance)
    for fid in ids:
        sites = {r.site: r for r in rep.ledger.replicas(fid)}
        assert set(sites) == {"CENTRAL", "CNAF", "JINR", "IN2P3"}
        assert all(r.status == "ok" and r.verified is not None for r in sites.values())
        assert sites["JINR"].route == "CENTRAL -> JINR"
        cat_reps = catalog.replicas(fid)
        assert {r.endpoint for r in cat_reps} == {"CENTRAL", "CNAF", "JINR", "IN2P3"}
        assert all(r.verified is not None for r in cat_reps)
    assert {r.state for r in rep.ledger.requests()} == {"done"}


def test_cut_link_goes_via_intermediate_and_temp_copy_is_removed(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    topo = local_topology(
        tmp_path,
        extra="  - {from: CENTRAL, to: JINR, disabled: true}",
        rules="  - {name: r, kind: raw, copies: 1, sites: [JINR]}",
    )
    rep = Replicator(catalog, topo, clock=clock)
    [fid] = add_raw_files(rep, tmp_path, run=7, n=1)
    rep.apply_rules()
    rep.run_once()
    [req] = rep.ledger.requests()
    assert req.state == "transferring"
    assert req.wait_reason == "waiting for hop via CNAF"
    assert rep.ledger.replica(fid, "CNAF").status == "temporary"
    rep.run(advance=clock.advance)
    [req] = rep.ledger.requests()
    assert req.state == "done" and req.wait_reason is None
    assert rep.ledger.replica(fid, "JINR").route == "CENTRAL -> CNAF -> JINR"
    assert rep.ledger.replica(fid, "CNAF") is None  # temporary copy removed after its last use
    assert not (tmp_path / "cnaf" / req.lfn).exists()
    assert [a.hop for a in rep.ledger.attempts(req.id)] == ["CENTRAL -> CNAF", "CNAF -> JINR"]


def test_failing_direct_link_is_measured_and_routed_around(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    def faults(src: str, dst: str, lfn: str) -> None:
        if (src, dst) == ("CENTRAL", "JINR"):
            raise TransferFailure("connection timed out", "timeout")

    topo = local_topology(tmp_path, rules="  - {name: r, kind: raw, copies: 1, sites: [JINR]}")
    rep = Replicator(catalog, topo, clock=clock, faults=faults)
    add_raw_files(rep, tmp_path, run=7, n=2)
    rep.apply_rules()
    rep.run(advance=clock.advance)
    reqs = rep.ledger.requests()
    assert [r.state for r in reqs] == ["done", "done"]
    first = rep.ledger.attempts(reqs[0].id)
    assert first[0].hop == "CENTRAL -> JINR" and first[0].error_class == "timeout"
    assert "timed out" in (first[0].message or "")
    assert rep.ledger.link_quality()[("CENTRAL", "JINR")].failures >= 1
    assert all(rep.ledger.replica(r.file_id, "JINR").route.count("CNAF") for r in reqs)


def test_already_present_with_right_checksum_counts_as_done(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    topo = local_topology(tmp_path, rules="  - {name: r, kind: raw, copies: 1, sites: [JINR]}")
    rep = Replicator(catalog, topo, clock=clock)
    [fid] = add_raw_files(rep, tmp_path, run=3, n=1)
    src = tmp_path / "central" / "raw" / "run3" / "run3.000.raw"
    dst = tmp_path / "jinr" / "raw" / "run3" / "run3.000.raw"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(src.read_bytes())
    rep.apply_rules()
    rep.run_once()
    [req] = rep.ledger.requests()
    assert req.state == "done"
    assert rep.ledger.attempts(req.id) == []
    assert rep.ledger.replica(fid, "JINR").route == "found at destination"


def test_corrupt_replica_is_quarantined_and_recopied(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    topo = local_topology(tmp_path, rules="  - {name: r, kind: raw, copies: 1, sites: [JINR]}")
    rep = Replicator(catalog, topo, clock=clock)
    [fid] = add_raw_files(rep, tmp_path, run=3, n=1)
    rep.apply_rules()
    rep.run(advance=clock.advance)
    copy = tmp_path / "jinr" / "raw" / "run3" / "run3.000.raw"
    data = bytearray(copy.read_bytes())
    data[100] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert rep.audit() == [(fid, "JINR")]
    assert rep.ledger.replica(fid, "JINR").status == "quarantined"
    [req] = rep.ledger.requests()
    assert req.state == "queued" and "replica corrupt" in (req.wait_reason or "")
    rep.run(advance=clock.advance)
    assert rep.ledger.replica(fid, "JINR").status == "ok"
    assert (
        copy.read_bytes() == (tmp_path / "central" / "raw" / "run3" / "run3.000.raw").read_bytes()
    )
    assert rep.audit() == []


def test_missing_source_waits_with_reason_and_permanent_error_fails(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    topo = local_topology(tmp_path, rules="  - {name: r, kind: raw, copies: 1, sites: [JINR]}")
    rep = Replicator(catalog, topo, clock=clock)
    path = tmp_path / "elsewhere" / "run5.000.raw"
    path.parent.mkdir()
    path.write_bytes(b"x" * 100)
    catalog.add_file(path, kind="raw", run=5, seq=0)  # catalogued, but no site holds it
    rep.apply_rules()
    rep.run_once()
    [req] = rep.ledger.requests()
    assert req.state == "queued" and req.wait_reason.startswith("no source")

    def refused(src: str, dst: str, lfn: str) -> None:
        raise TransferFailure("JINR refused the token (wrong scope)", "token_refused")

    rep2 = Replicator(catalog, topo, clock=clock, faults=refused)
    [fid] = add_raw_files(rep2, tmp_path, run=6, n=1)
    rep2.apply_rules()
    rep2.run(advance=clock.advance)
    req = rep2.ledger.find(fid, "JINR")
    assert req.state == "failed" and req.wait_reason is None
    [att] = rep2.ledger.attempts(req.id)
    assert att.error_class == "token_refused"


def test_transient_errors_retry_with_backoff_then_stuck(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    def no_space(src: str, dst: str, lfn: str) -> None:
        raise TransferFailure("No space left on device", "no_space")

    topo = local_topology(tmp_path, rules="  - {name: r, kind: raw, copies: 1, sites: [CNAF]}")
    rep = Replicator(catalog, topo, clock=clock, faults=no_space, max_attempts=3)
    [fid] = add_raw_files(rep, tmp_path, run=8, n=1)
    rep.apply_rules()
    t0 = clock()
    rep.run_once()
    req = rep.ledger.find(fid, "CNAF")
    assert req.state == "retrying" and req.next_try == t0 + 300
    assert req.wait_reason.startswith("no_space: retry in 300 s")
    rep.run(advance=clock.advance)
    req = rep.ledger.find(fid, "CNAF")
    assert req.state == "stuck" and "gave up after 3 attempts" in req.wait_reason
    assert len(rep.ledger.attempts(req.id)) == 3


def test_run_view_counts_waiting_for_hop_and_flags_late_runs(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    from jaas.transfer.views import late_runs, run_view

    topo = local_topology(
        tmp_path,
        extra="  - {from: CENTRAL, to: JINR, disabled: true}",
        rules="  - {name: r, kind: raw, copies: 1, sites: [JINR], deadline_hours: 1}",
    )
    rep = Replicator(catalog, topo, clock=clock)
    add_raw_files(rep, tmp_path, run=12, n=2)
    rep.apply_rules()
    rep.run_once()
    view = run_view(rep.ledger, 12, clock())
    assert view.summary() == "run 12: 0/2 files at JINR verified, 2 waiting for hop via CNAF"
    assert not view.late and late_runs(rep.ledger, clock()) == []
    clock.advance(2 * 3600)
    [late] = late_runs(rep.ledger, clock())
    assert late.run == 12 and "LATE" in late.summary()
    rep.run(advance=clock.advance)
    assert run_view(rep.ledger, 12, clock()).safe
    assert late_runs(rep.ledger, clock()) == []
