"""The transfer layer's tables (SQLAlchemy Core, one MetaData) in the catalog's database.

Created by migration 0005 of :mod:`jaas.db` (keep the two in step).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["attempts", "link_stats", "metadata", "requests", "site_replicas"]

metadata = sa.MetaData()


def _per_file_and_site(name: str, site: str, *columns: sa.Column[Any]) -> sa.Table:
    """A table with one row per (file, site): ``id``, ``file_id``, ``site``, ``columns``."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_id", sa.Integer, nullable=False, index=True),
        sa.Column(site, sa.String(64), nullable=False),
        *columns,
        sa.UniqueConstraint("file_id", site, name=f"uq_{name}_file_{site}"),
    )


# one row per (file, destination site): the ledger of the state machine in states.py
requests = _per_file_and_site(
    "transfer_requests",
    "dest",
    sa.Column("lfn", sa.Text, nullable=False),
    sa.Column("checksum", sa.String(8), nullable=False),
    sa.Column("size", sa.Integer, nullable=True),
    sa.Column("run", sa.Integer, nullable=True, index=True),
    sa.Column("rule", sa.String(200), nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("wait_reason", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_try", sa.Float, nullable=False, default=0.0),
    sa.Column("route", sa.Text, nullable=False, default=""),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("deadline", sa.Float, nullable=True),
    sa.Column("updated", sa.Float, nullable=False),
)

# every attempt (one per route try), with its error class and message
attempts = sa.Table(
    "transfer_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.Integer, nullable=False, index=True),
    sa.Column("route", sa.Text, nullable=False),
    sa.Column("hop", sa.String(140), nullable=False, default=""),
    sa.Column("started", sa.Float, nullable=False),
    sa.Column("ended", sa.Float, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error_class", sa.String(32), nullable=True),
    sa.Column("message", sa.Text, nullable=True),
)

# measured link quality: successes, failures, bytes and seconds of successful copies
link_stats = sa.Table(
    "transfer_links",
    metadata,
    sa.Column("src", sa.String(64), primary_key=True),
    sa.Column("dst", sa.String(64), primary_key=True),
    sa.Column("successes", sa.Integer, nullable=False, default=0),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("bytes", sa.Float, nullable=False, default=0.0),
    sa.Column("seconds", sa.Float, nullable=False, default=0.0),
)

# what the transfer layer knows about each copy: checksum, verification, route, status
site_replicas = _per_file_and_site(
    "transfer_replicas",
    "site",
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("checksum", sa.String(8), nullable=True),
    sa.Column("verified", sa.DateTime(timezone=True), nullable=True),
    # ok | temporary (an intermediate hop copy) | quarantined (bytes do not match)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("route", sa.Text, nullable=False, default=""),
)
