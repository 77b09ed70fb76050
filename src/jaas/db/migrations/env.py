"""Alembic environment of jaas: runs on the connection handed over by :mod:`jaas.db.migrate`.

The caller owns the transaction (one for the whole upgrade, holding the write lock).
"""

from __future__ import annotations

from alembic import context

from jaas.db.migrate import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable through the alembic CLI
    raise SystemExit("run migrations with `jaas db upgrade URL`, not the alembic command")

context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
