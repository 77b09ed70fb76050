"""Portal tokens, the transfer tables and the indexes of the ledger read models.

Until now ``portal_tokens`` (jaas.portal.auth) and the ``transfer_*`` tables
(jaas.transfer.tables) were made by ``create_all`` on first use; from here on every
table is under the one version table. Tables that such a ``create_all`` already made
are kept as they are (same columns, same index names); missing ones are created.
The indexes serve the read models: jobs by stage and/or state in id order, jobs by
last change (the portal's "latest first"), attempts ended since a time, a file's
outbox messages. (Revision 0005 after 0004, 2026-12-02.)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

_TS = sa.DateTime(timezone=True)
# (index, table, columns) on tables that exist since 0001
_INDEXES = (
    ("ix_kup_jobs_stage_state_id", "kup_jobs", ["stage", "state", "id"]),
    ("ix_kup_jobs_state_id", "kup_jobs", ["state", "id"]),
    ("ix_kup_jobs_updated_id", "kup_jobs", ["updated", "id"]),
    ("ix_kup_attempts_ended", "kup_attempts", ["ended"]),
    ("ix_kup_outbox_key", "kup_outbox", ["key"]),
)


def _with_id(name: str, md: sa.MetaData, *cols: sa.Column[Any] | sa.Constraint) -> None:
    sa.Table(name, md, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), *cols)


def _by_file(name: str, md: sa.MetaData, *cols: sa.Column[Any] | sa.Constraint) -> None:
    """A transfer table keyed by id, with the catalog file it is about (indexed)."""
    _with_id(name, md, sa.Column("file_id", sa.Integer, nullable=False, index=True), *cols)


def _tables() -> sa.MetaData:
    md = sa.MetaData()
    C = sa.Column
    text, real = sa.Text, sa.Float
    _by_file(
        "transfer_requests",
        md,
        C("dest", sa.String(64), nullable=False),
        C("lfn", text, nullable=False),
        C("checksum", sa.String(8), nullable=False),
        C("size", sa.Integer),
        C("run", sa.Integer, index=True),
        C("rule", sa.String(200), nullable=False),
        C("state", sa.String(16), nullable=False, index=True),
        C("wait_reason", text),
        C("attempts", sa.Integer, nullable=False),
        C("next_try", real, nullable=False),
        C("route", text, nullable=False),
        C("created", real, nullable=False),
        C("deadline", real),
        C("updated", real, nullable=False),
        sa.UniqueConstraint("file_id", "dest", name="uq_transfer_requests_file_dest"),
    )
    _by_file(
        "transfer_replicas",
        md,
        C("site", sa.String(64), nullable=False),
        C("url", text, nullable=False),
        C("checksum", sa.String(8)),
        C("verified", _TS),
        C("status", sa.String(16), nullable=False),
        C("route", text, nullable=False),
        sa.UniqueConstraint("file_id", "site", name="uq_transfer_replicas_file_site"),
    )
    _with_id(
        "transfer_attempts",
        md,
        C("request_id", sa.Integer, nullable=False, index=True),
        C("route", text, nullable=False),
        C("hop", sa.String(140), nullable=False),
        C("started", real, nullable=False),
        C("ended", real, nullable=False),
        C("ok", sa.Boolean, nullable=False),
        C("error_class", sa.String(32)),
        C("message", text),
    )
    sa.Table(
        "transfer_links",
        md,
        C("src", sa.String(64), primary_key=True),
        C("dst", sa.String(64), primary_key=True),
        C("successes", sa.Integer, nullable=False),
        C("failures", sa.Integer, nullable=False),
        C("bytes", real, nullable=False),
        C("seconds", real, nullable=False),
    )
    _with_id(
        "portal_tokens",
        md,
        C("name", sa.String(128), nullable=False),
        C("hash", sa.String(64), nullable=False, unique=True),
        C("scope", sa.String(16), nullable=False),
        C("created", _TS, nullable=False),
        C("revoked", _TS),
    )
    return md


def upgrade() -> None:
    bind = op.get_bind()
    _tables().create_all(bind, checkfirst=True)
    inspector = sa.inspect(bind)
    for name, table, columns in _INDEXES:
        if name not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
    _tables().drop_all(op.get_bind(), checkfirst=True)
