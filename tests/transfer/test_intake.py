from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from jaas.store.catalog import Catalog
from jaas.transfer.checksum import adler32_file
from jaas.transfer.errors import TransferFailure
from jaas.transfer.intake import intake_dropbox, parse_run_seq
from jaas.transfer.replicator import Replicator

from .conftest import FakeClock, local_topology


def _drop(dropbox: Path, name: str, marker: bool = True) -> bytes:
    data = os.urandom(2048)
    (dropbox / name).write_bytes(data)
    if marker:
        (dropbox / f"{name}.done").write_text("")
    return data


def test_parse_run_seq() -> None:
    assert parse_run_seq("run12.003.raw") == (12, 3)
    assert parse_run_seq("run000012_0003.raw") == (12, 3)
    assert parse_run_seq("calib.raw") == (None, None)


def test_intake_moves_verifies_registers_ingests_then_deletes(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    dropbox = tmp_path / "dropbox"
    dropbox.mkdir()
    data = _drop(dropbox, "run12.000.raw")
    _drop(dropbox, "run12.001.raw", marker=False)  # DAQ still writing: untouched
    seen: list[str] = []

    def ingest(paths: Sequence[str]) -> None:
        # keep-up sees the file registered and the source still present
        assert (dropbox / "run12.000.raw").exists()
        seen.extend(paths)

    rep = Replicator(catalog, local_topology(tmp_path), clock=clock)
    [res] = intake_dropbox(dropbox, rep, central="CENTRAL", ingest=ingest)
    assert res.ok and res.checksum == adler32_file(tmp_path / "central/raw/run12/run12.000.raw")
    central = tmp_path / "central" / "raw" / "run12" / "run12.000.raw"
    assert central.read_bytes() == data
    assert seen == [str(central)]
    rec = catalog.get_file(res.file_id)
    assert (rec.kind, rec.run, rec.seq, rec.adler32) == ("raw", 12, 0, res.checksum)
    assert rep.ledger.replica(rec.id, "CENTRAL").status == "ok"
    assert (
        not (dropbox / "run12.000.raw").exists() and not (dropbox / "run12.000.raw.done").exists()
    )
    assert (dropbox / "run12.001.raw").exists()
    # the file then replicates by rule
    rep.apply_rules()
    rep.run(advance=clock.advance)
    assert {r.site for r in rep.ledger.replicas(rec.id) if r.status == "ok"} == {
        "CENTRAL",
        "CNAF",
        "JINR",
        "IN2P3",
    }


def test_nothing_deleted_at_source_when_a_step_fails(
    tmp_path: Path, catalog: Catalog, clock: FakeClock
) -> None:
    dropbox = tmp_path / "dropbox"
    dropbox.mkdir()
    _drop(dropbox, "run3.000.raw")

    def broken_ingest(paths: Sequence[str]) -> None:
        raise TransferFailure("keep-up is down", "connection")

    rep = Replicator(catalog, local_topology(tmp_path), clock=clock)
    [res] = intake_dropbox(dropbox, rep, central="CENTRAL", ingest=broken_ingest)
    assert not res.ok and "keep-up is down" in res.message
    assert (dropbox / "run3.000.raw").exists() and (dropbox / "run3.000.raw.done").exists()

    class Flipping(type(rep.storages["CENTRAL"])):  # type: ignore[misc]
        def upload(self, local: Path, lfn: str) -> None:
            super().upload(local, lfn)
            p = self.path(lfn)
            b = bytearray(p.read_bytes())
            b[0] ^= 1
            p.write_bytes(bytes(b))

    rep.storages["CENTRAL"] = Flipping("CENTRAL", tmp_path / "central")
    _drop(dropbox, "run4.000.raw")
    results = {r.name: r for r in intake_dropbox(dropbox, rep, central="CENTRAL")}
    assert not results["run4.000.raw"].ok
    assert "checksum_mismatch" in results["run4.000.raw"].message
    assert (dropbox / "run4.000.raw").exists()
    assert not (tmp_path / "central" / "raw" / "run4" / "run4.000.raw").exists()
