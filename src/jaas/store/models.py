"""Catalog tables (SQLAlchemy 2.x typed ORM): runs, files, parentage, datasets, replicas."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "FILE_KINDS",
    "FILE_STATUSES",
    "Base",
    "CatalogAudit",
    "Dataset",
    "DatasetFile",
    "File",
    "Parentage",
    "Replica",
    "Run",
]

# A change to a table needs an Alembic migration in ``jaas/db/migrations/versions``.
FILE_KINDS = ("raw", "rtraw", "esd", "index", "truth", "meta")
FILE_STATUSES = ("good", "bad", "quarantined")

_JSON = JSON().with_variant(JSONB(), "postgresql")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the catalog tables."""


class Run(Base):
    """A detector run: start/end trigger time (ns since the Unix epoch), status, metadata."""

    __tablename__ = "runs"
    run: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    start_ns: Mapped[int | None] = mapped_column(BigInteger)
    end_ns: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32), default="open")
    meta: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)


class File(Base):
    """A file of any kind with its checksum; ``path`` is unique (absolute path or URL)."""

    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("path", name="uq_files_path"),
        CheckConstraint(f"kind IN {FILE_KINDS!r}", name="ck_files_kind"),
        CheckConstraint(f"status IN {FILE_STATUSES!r}", name="ck_files_status"),
        Index("ix_files_run_seq", "run", "seq"),
        Index("ix_files_kind", "kind"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    run: Mapped[int | None] = mapped_column(ForeignKey("runs.run"))
    seq: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(BigInteger)
    adler32: Mapped[str | None] = mapped_column(String(8))
    n_events: Mapped[int | None] = mapped_column(BigInteger)
    t_min: Mapped[int | None] = mapped_column(BigInteger)
    t_max: Mapped[int | None] = mapped_column(BigInteger)
    software_version: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    status: Mapped[str] = mapped_column(String(16), default="good")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(_JSON, default=dict)


class Parentage(Base):
    """Edge child -> parent (RAW -> RTRAW -> ESD -> index)."""

    __tablename__ = "parentage"
    child_id: Mapped[int] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    parent_id: Mapped[int] = mapped_column(
        ForeignKey("files.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Dataset(Base):
    """A named, versioned set of files; a version never changes once created."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_datasets_name_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)


class DatasetFile(Base):
    """Dataset membership."""

    __tablename__ = "dataset_files"
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"), primary_key=True, index=True)


class Replica(Base):
    """A copy of a file at a storage endpoint, with the time its checksum was last verified."""

    __tablename__ = "replicas"
    __table_args__ = (UniqueConstraint("file_id", "url", name="uq_replicas_file_url"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    verified: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CatalogAudit(Base):
    """What changed a catalogued file after registration: who, when, old and new bytes.

    ``file_id`` is no foreign key, so the history outlives a deleted row.
    """

    __tablename__ = "catalog_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    who: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    file_id: Mapped[int] = mapped_column(Integer, index=True)
    path: Mapped[str] = mapped_column(Text)
    old_size: Mapped[int | None] = mapped_column(BigInteger)
    new_size: Mapped[int | None] = mapped_column(BigInteger)
    old_adler32: Mapped[str | None] = mapped_column(String(8))
    new_adler32: Mapped[str | None] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
