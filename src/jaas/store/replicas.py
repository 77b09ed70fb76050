"""Catalog concern: replicas (copies of a file at storage endpoints, last verification)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from jaas.errors import NotInCatalogError
from jaas.store._base import CatalogBase, get_or_add, replica_record
from jaas.store.models import Replica
from jaas.store.records import ReplicaRecord

__all__ = ["Replicas"]


class Replicas(CatalogBase):
    """Replicas of the catalog's files (mixed into :class:`jaas.store.Catalog`)."""

    def add_replica(self, file_id: int, url: str, *, endpoint: str = "") -> ReplicaRecord:
        """Record a copy of a file (idempotent for the same url)."""

        def attempt() -> ReplicaRecord:
            with self._tx() as s:
                self._get_row(s, file_id)
                key = {"file_id": file_id, "url": url}
                row = get_or_add(s, Replica, key, endpoint=endpoint)
                return replica_record(row)

        result: ReplicaRecord = self._retry(attempt)
        return result

    def replicas(self, file_id: int) -> list[ReplicaRecord]:
        """The known copies of a file."""
        with self._tx() as s:
            rows = s.scalars(select(Replica).where(Replica.file_id == file_id).order_by(Replica.id))
            return [replica_record(r) for r in rows]

    def mark_replica_verified(self, replica_id: int, when: dt.datetime | None = None) -> None:
        """Record that a replica's checksum was verified (now by default)."""
        with self._tx() as s:
            row = s.get(Replica, replica_id)
            if row is None:
                raise NotInCatalogError(f"replica {replica_id} is not in {self!r}")
            row.verified = when or dt.datetime.now(dt.UTC)
