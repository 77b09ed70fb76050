"""Transfers and replicas, from the transfer layer's read models (``jaas.transfer.views``).

The transfer tables live in the same database as the ledger (migration 0005 makes them
in every pipeline database); while they hold no request and no replica, or are missing
(a database not yet upgraded), no transfer layer is configured: the view says so
(``configured: false``) and creates nothing. A file's replicas are those whose LFN ends
with the file's name.
"""

from __future__ import annotations

import posixpath
import time

from fastapi import APIRouter
from sqlalchemy import exists, inspect, select

from jaas.portal.app import _ERRORS, LedgerDep, ReaderDep
from jaas.portal.schemas import ReplicaOut, TransferRunOut, TransfersOut
from jaas.portal.source import LedgerSource
from jaas.transfer import tables
from jaas.transfer.ledger import Ledger as TransferLedger
from jaas.transfer.views import ReplicaView, replica_table, run_view, runs

__all__ = ["router", "transfers_view"]

router = APIRouter(tags=["transfers"])


def _ledger(source: LedgerSource) -> TransferLedger | None:
    engine = source.ledger.engine
    names = set(inspect(engine).get_table_names())
    if not {t.name for t in tables.metadata.sorted_tables} <= names:
        return None
    with engine.connect() as conn:
        used = conn.execute(
            select(exists(select(tables.requests.c.id)) | exists(select(tables.site_replicas.c.id)))
        ).scalar()
    return TransferLedger(engine) if used else None


def _replica(r: ReplicaView) -> ReplicaOut:
    return ReplicaOut.model_validate(r, from_attributes=True)


def transfers_view(source: LedgerSource) -> TransfersOut:
    """Per run its replication state (newest first) and every replica."""
    led = _ledger(source)
    if led is None:
        return TransfersOut(configured=False, runs=[], replicas=[])
    now = time.time()
    views = [run_view(led, r, now) for r in sorted(runs(led), reverse=True)]
    return TransfersOut(
        configured=True,
        runs=[
            TransferRunOut(run=v.run, safe=v.safe, late=v.late, summary=v.summary()) for v in views
        ],
        replicas=[_replica(r) for r in replica_table(led)],
    )


@router.get("/api/transfers", response_model=TransfersOut, responses=_ERRORS)
def transfers(source: LedgerDep, _: ReaderDep) -> TransfersOut:
    """Replication per run (verified / waiting / failed per site) and every replica."""
    return transfers_view(source)


@router.get("/api/files/{file}/replicas", response_model=list[ReplicaOut], responses=_ERRORS)
def file_replicas(source: LedgerDep, _: ReaderDep, file: str) -> list[ReplicaOut]:
    """The copies of one file at every site (empty: none known or no transfer layer)."""
    led = _ledger(source)
    if led is None:
        return []
    return [_replica(r) for r in replica_table(led) if posixpath.basename(r.lfn) == file]
