"""Transfers and replicas from the transfer layer's tables in the same database."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import text

from jaas.transfer.ledger import Ledger as TransferLedger


def test_without_a_transfer_layer_the_view_says_so_and_creates_nothing(client, ledger):
    assert client.get("/api/transfers").json() == {
        "configured": False,
        "runs": [],
        "replicas": [],
    }
    assert client.get("/api/files/run1_0001.raw/replicas").json() == []
    with ledger.engine.connect() as conn:  # the tables exist (migration 0005) and stay empty
        assert conn.execute(text("SELECT count(*) FROM transfer_requests")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM transfer_replicas")).scalar() == 0


def replicate(ledger, dests: tuple[str, ...] = ("CNAF", "JINR")) -> None:
    """Requests of run1_0001/0002 to ``dests``; one verified copy of run1_0001 at CNAF."""
    tl = TransferLedger(ledger.engine)
    now = time.time()
    for fid, name in ((1, "run1_0001.raw"), (2, "run1_0002.raw")):
        for dest in dests:
            tl.ensure_request(
                file_id=fid,
                dest=dest,
                lfn=f"/juno/raw/{name}",
                checksum="0000abcd",
                size=1,
                run=1,
                rule="raw-to-sites",
                now=now,
                deadline=None,
            )
    tl.set_replica(
        1,
        "CNAF",
        "root://cnaf//juno/raw/run1_0001.raw",
        checksum="0000abcd",
        status="ok",
        route="IHEP -> CNAF",
        verified=dt.datetime.now(dt.UTC),
    )


def test_runs_and_replicas_of_the_transfer_layer(client, ledger):
    replicate(ledger)
    body = client.get("/api/transfers").json()
    assert body["configured"] is True
    assert [(r["run"], r["safe"], r["late"]) for r in body["runs"]] == [(1, False, False)]
    assert body["runs"][0]["summary"].startswith("run 1: 0/2 files at ")
    reps = client.get("/api/files/run1_0001.raw/replicas").json()
    assert [(r["site"], r["status"], r["route"]) for r in reps] == [("CNAF", "ok", "IHEP -> CNAF")]
    assert client.get("/api/files/run1_0002.raw/replicas").json() == []
