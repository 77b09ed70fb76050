"""The monitor's lag history per (group, partition): ``kup_lag_partitions``.

One row per partition of every stage's consumer group per history sample (committed
offset, high watermark, lag, Burrow status), pruned with ``kup_monitor_history``.
(Revision 0007 after 0006, 2026-12-02.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

_NAME = "kup_lag_partitions"


def upgrade() -> None:
    op.create_table(
        _NAME,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("group", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("committed", sa.Integer),
        sa.Column("high", sa.Integer, nullable=False),
        sa.Column("lag", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(255)),
    )
    op.create_index(f"ix_{_NAME}_at", _NAME, ["at"])


def downgrade() -> None:
    op.drop_index(f"ix_{_NAME}_at", table_name=_NAME)
    op.drop_table(_NAME)
