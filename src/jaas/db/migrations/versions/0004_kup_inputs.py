"""Keep-up inputs: each RAW file known by content (adler32, size) and (run, sequence).

(Revision 0004 after 0003, 2026-12-02.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "kup_inputs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file", sa.String(512), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("adler32", sa.String(8), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("run", sa.Integer),
        sa.Column("seq", sa.Integer),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_kup_inputs_adler32", "kup_inputs", ["adler32"])


def downgrade() -> None:
    op.drop_index("ix_kup_inputs_adler32", table_name="kup_inputs")
    op.drop_table("kup_inputs")
