"""The one owner of jaas's database: engines, retries and schema migrations.

Catalog (:mod:`jaas.store`) and ledger (:mod:`jaas.kup`) open their database through
:func:`make_engine` and bring its schema up to date with :func:`ensure_schema`; operators
run ``jaas db upgrade URL`` and ``jaas db current URL``.
"""

from __future__ import annotations

from jaas.db.engine import database_url, describe, is_sqlite, make_engine, retry, sqlite_path
from jaas.db.migrate import (
    VERSION_TABLE,
    current_revision,
    ensure_schema,
    has_previous_release_tables,
    head_revision,
    upgrade,
)

__all__ = [
    "VERSION_TABLE",
    "current_revision",
    "database_url",
    "describe",
    "ensure_schema",
    "has_previous_release_tables",
    "head_revision",
    "is_sqlite",
    "make_engine",
    "retry",
    "sqlite_path",
    "upgrade",
]
