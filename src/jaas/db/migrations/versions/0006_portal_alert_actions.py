"""The portal's audited alert acknowledgements and silences (``portal_alert_actions``).

Made by ``create_all`` on first use by the first portal that had them (jaas.portal.
routes_alerts); a table that such a portal already made is kept with its rows.
(Revision 0006 after 0005, 2026-12-02.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

_NAME = "portal_alert_actions"


def upgrade() -> None:
    bind = op.get_bind()
    if _NAME in sa.inspect(bind).get_table_names():
        return
    when = sa.DateTime(timezone=True)
    op.create_table(
        _NAME,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", when, nullable=False),
        sa.Column("who", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.Integer),
        sa.Column("rule", sa.String(64)),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("until", when),
        sa.Column("note", sa.Text),
    )


def downgrade() -> None:
    op.drop_table(_NAME)
