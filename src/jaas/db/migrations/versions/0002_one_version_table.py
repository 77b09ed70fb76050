"""One version table: the catalog's own ``jaas_schema`` goes (Alembic's table replaces it).

A catalog whose ``jaas_schema`` says a version above 1 was made by a jaas that this
migration does not know; it is refused instead of being silently altered.

(Revision 0002 after 0001, 2026-12-01.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    bind = op.get_bind()
    if "jaas_schema" not in sa.inspect(bind).get_table_names():
        return
    found = bind.execute(sa.text("SELECT max(version) FROM jaas_schema")).scalar()
    if found is not None and found > 1:
        from jaas.errors import DatabaseError

        raise DatabaseError(
            f"catalog schema version {found} is newer than this jaas understands; upgrade jaas"
        )
    op.drop_table("jaas_schema")


def downgrade() -> None:
    op.create_table(
        "jaas_schema",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("applied", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(sa.text("INSERT INTO jaas_schema (version, applied) VALUES (1, CURRENT_TIMESTAMP)"))
