"""Catalog audit: a product rebuilt at the same path records old and new bytes.

(Revision 0003 after 0002, 2026-12-01.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "catalog_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("file_id", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("old_size", sa.BigInteger),
        sa.Column("new_size", sa.BigInteger),
        sa.Column("old_adler32", sa.String(8)),
        sa.Column("new_adler32", sa.String(8)),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_catalog_audit_file_id", "catalog_audit", ["file_id"])


def downgrade() -> None:
    op.drop_index("ix_catalog_audit_file_id", table_name="catalog_audit")
    op.drop_table("catalog_audit")
