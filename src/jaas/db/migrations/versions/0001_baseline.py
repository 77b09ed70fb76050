"""Baseline: the schema of the release before migrations (commit 3986766).

Creates each table that does not exist yet, exactly as that release's ``create_all``
did, so it serves both an empty database and one made by that release (whose tables
may be only partly there: a catalog without ledger, a ledger without monitor history).

(Revision 0001, the first, 2026-12-01.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None

_JSONB = sa.JSON().with_variant(JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)
_KINDS = "kind IN ('raw', 'rtraw', 'esd', 'index', 'truth', 'meta')"
_STATUSES = "status IN ('good', 'bad', 'quarantined')"


def _tables() -> sa.MetaData:
    md = sa.MetaData()
    C = sa.Column
    sa.Table(
        "jaas_schema",
        md,
        C("version", sa.Integer, primary_key=True),
        C("applied", _TS, nullable=False),
    )
    sa.Table(
        "runs",
        md,
        C("run", sa.Integer, primary_key=True, autoincrement=False),
        C("start_ns", sa.BigInteger),
        C("end_ns", sa.BigInteger),
        C("status", sa.String(32), nullable=False),
        C("meta", _JSONB, nullable=False),
    )
    sa.Table(
        "files",
        md,
        C("id", sa.Integer, primary_key=True, autoincrement=True),
        C("path", sa.Text, nullable=False),
        C("kind", sa.String(16), nullable=False),
        C("run", sa.Integer, sa.ForeignKey("runs.run")),
        C("seq", sa.Integer),
        C("size", sa.BigInteger),
        C("adler32", sa.String(8)),
        C("n_events", sa.BigInteger),
        C("t_min", sa.BigInteger),
        C("t_max", sa.BigInteger),
        C("software_version", sa.String(64)),
        C("created", _TS, nullable=False),
        C("status", sa.String(16), nullable=False),
        C("status_reason", sa.Text, nullable=False),
        C("meta", _JSONB, nullable=False),
        sa.UniqueConstraint("path", name="uq_files_path"),
        sa.CheckConstraint(_KINDS, name="ck_files_kind"),
        sa.CheckConstraint(_STATUSES, name="ck_files_status"),
        sa.Index("ix_files_run_seq", "run", "seq"),
        sa.Index("ix_files_kind", "kind"),
    )
    sa.Table(
        "parentage",
        md,
        C("child_id", sa.Integer, sa.ForeignKey("files.id", ondelete="CASCADE"), primary_key=True),
        C(
            "parent_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )
    sa.Table(
        "datasets",
        md,
        C("id", sa.Integer, primary_key=True, autoincrement=True),
        C("name", sa.String(200), nullable=False),
        C("version", sa.Integer, nullable=False),
        C("description", sa.Text, nullable=False),
        C("created", _TS, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_datasets_name_version"),
    )
    sa.Table(
        "dataset_files",
        md,
        C(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        C("file_id", sa.Integer, sa.ForeignKey("files.id"), primary_key=True, index=True),
    )
    sa.Table(
        "replicas",
        md,
        C("id", sa.Integer, primary_key=True, autoincrement=True),
        C(
            "file_id",
            sa.Integer,
            sa.ForeignKey("files.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        C("endpoint", sa.String(200), nullable=False),
        C("url", sa.Text, nullable=False),
        C("verified", _TS),
        sa.UniqueConstraint("file_id", "url", name="uq_replicas_file_url"),
    )
    sa.Table(
        "kup_jobs",
        md,
        C("id", sa.Integer, primary_key=True),
        C("file", sa.String(512), nullable=False),
        C("stage", sa.String(64), nullable=False),
        C("version", sa.String(64), nullable=False),
        C("state", sa.String(16), nullable=False),
        C("attempts", sa.Integer, nullable=False),
        C("last_reason", sa.Text),
        C("input_path", sa.Text),
        C("output_path", sa.Text),
        C("retry_at", _TS),
        C("lease_until", _TS),
        C("owner", sa.String(128)),
        C("created", _TS, nullable=False),
        C("updated", _TS, nullable=False),
        sa.UniqueConstraint("file", "stage", "version", name="uq_kup_jobs_key"),
    )
    sa.Table(
        "kup_attempts",
        md,
        C("id", sa.Integer, primary_key=True),
        C("job_id", sa.Integer, sa.ForeignKey("kup_jobs.id"), nullable=False, index=True),
        C("number", sa.Integer, nullable=False),
        C("worker", sa.String(128)),
        C("started", _TS, nullable=False),
        C("ended", _TS),
        C("exit_code", sa.Integer),
        C("log_path", sa.Text),
        C("reason", sa.Text),
        C("classification", sa.String(16)),
    )
    sa.Table(
        "kup_outbox",
        md,
        C("id", sa.Integer, primary_key=True),
        C("message_id", sa.String(64), nullable=False, unique=True),
        C("topic", sa.String(255), nullable=False),
        C("key", sa.String(512), nullable=False),
        C("payload", sa.JSON, nullable=False),
        C("created", _TS, nullable=False),
        C("published_at", _TS, index=True),
    )
    sa.Table(
        "kup_audit",
        md,
        C("id", sa.Integer, primary_key=True),
        C("at", _TS, nullable=False),
        C("who", sa.String(128), nullable=False),
        C("action", sa.String(32), nullable=False),
        C("file", sa.String(512), nullable=False),
        C("stage", sa.String(64), nullable=False),
        C("version", sa.String(64), nullable=False),
        C("from_state", sa.String(16), nullable=False),
        C("to_state", sa.String(16), nullable=False),
        C("note", sa.Text),
    )
    sa.Table(
        "kup_monitor_history",
        md,
        C("id", sa.Integer, primary_key=True),
        C("at", _TS, nullable=False, index=True),
        C("stage", sa.String(64), nullable=False),
        C("queued", sa.Integer, nullable=False),
        C("running", sa.Integer, nullable=False),
        C("done", sa.Integer, nullable=False),
        C("failed", sa.Integer, nullable=False),
        C("files_per_min", sa.Float, nullable=False),
        C("failure_rate", sa.Float),
        C("produced", sa.Integer),
        C("consumed", sa.Integer),
        C("lag", sa.Integer),
        C("lag_status", sa.String(8)),
    )
    sa.Table(
        "kup_alerts",
        md,
        C("id", sa.Integer, primary_key=True),
        C("rule", sa.String(64), nullable=False),
        C("subject", sa.String(255), nullable=False),
        C("severity", sa.String(16), nullable=False),
        C("message", sa.Text, nullable=False),
        C("value", sa.Float),
        C("raised", _TS, nullable=False),
        C("last_seen", _TS, nullable=False),
        C("resolved", _TS),
        sa.Index("ix_kup_alerts_active", "rule", "subject", "resolved"),
    )
    return md


def upgrade() -> None:
    _tables().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    _tables().drop_all(op.get_bind(), checkfirst=True)
