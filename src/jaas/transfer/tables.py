"""The transfer layer's tables (SQLAlchemy Core, one MetaData) in the catalog's database.

Created by migration 0005 of :mod:`jaas.db` (keep the two in step).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["attempts", "link_stats", "metadata", "requests", "site_replicas"]

metadata = MetaData()

# one row per (file, destination site): the ledger of the state machine in states.py
requests = Table(
    "transfer_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, nullable=False, index=True),
    Column("dest", String(64), nullable=False),
    Column("lfn", Text, nullable=False),
    Column("checksum", String(8), nullable=False),
    Column("size", Integer, nullable=True),
    Column("run", Integer, nullable=True, index=True),
    Column("rule", String(200), nullable=False, default=""),
    Column("state", String(16), nullable=False, index=True),
    Column("wait_reason", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_try", Float, nullable=False, default=0.0),
    Column("route", Text, nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("deadline", Float, nullable=True),
    Column("updated", Float, nullable=False),
    UniqueConstraint("file_id", "dest", name="uq_transfer_requests_file_dest"),
)

# every attempt (one per route try), with its error class and message
attempts = Table(
    "transfer_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", Integer, nullable=False, index=True),
    Column("route", Text, nullable=False),
    Column("hop", String(140), nullable=False, default=""),
    Column("started", Float, nullable=False),
    Column("ended", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error_class", String(32), nullable=True),
    Column("message", Text, nullable=True),
)

# measured link quality: successes, failures, bytes and seconds of successful copies
link_stats = Table(
    "transfer_links",
    metadata,
    Column("src", String(64), primary_key=True),
    Column("dst", String(64), primary_key=True),
    Column("successes", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("bytes", Float, nullable=False, default=0.0),
    Column("seconds", Float, nullable=False, default=0.0),
)

# what the transfer layer knows about each copy: checksum, verification, route, status
site_replicas = Table(
    "transfer_replicas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, nullable=False, index=True),
    Column("site", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("checksum", String(8), nullable=True),
    Column("verified", DateTime(timezone=True), nullable=True),
    # ok | temporary (an intermediate hop copy) | quarantined (bytes do not match)
    Column("status", String(16), nullable=False),
    Column("route", Text, nullable=False, default=""),
    UniqueConstraint("file_id", "site", name="uq_transfer_replicas_file_site"),
)
