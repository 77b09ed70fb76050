"""Schema migrations (Alembic) for every jaas table, with one version table.

Catalog (runs, files, parentage, datasets, replicas), ledger (kup_jobs, kup_attempts,
kup_outbox, kup_audit), monitor history and alerts all live in one database whose
revision is kept in the single table ``jaas_alembic_version``. The scripts ship inside
the package (``jaas/db/migrations``).

Opening a database (:func:`ensure_schema`, called by ``Catalog`` and ``Ledger``):

* an empty database is created at the newest revision, on every backend;
* an older SQLite database (the embedded default, one user) is upgraded in place;
* an older PostgreSQL database (shared, run by operators) is refused with a
  :class:`~jaas.errors.DatabaseError` that says to run ``jaas db upgrade URL``;
* a database newer than this jaas is refused (upgrade jaas).

Upgrades run in one transaction that holds the write lock (SQLite ``BEGIN IMMEDIATE``,
a PostgreSQL advisory lock), so processes opening a database at the same time do not race.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, func, inspect, select
from sqlalchemy.exc import DBAPIError

from jaas.db.engine import describe, make_engine
from jaas.errors import DatabaseError

__all__ = [
    "JAAS_TABLES",
    "VERSION_TABLE",
    "current_revision",
    "ensure_schema",
    "has_previous_release_tables",
    "head_revision",
    "upgrade",
]

VERSION_TABLE = "jaas_alembic_version"
# Tables of the release before migrations (commit 3986766): their presence without a
# version table means "created by the previous release".
JAAS_TABLES = (
    "jaas_schema",
    "runs",
    "files",
    "parentage",
    "datasets",
    "dataset_files",
    "replicas",
    "kup_jobs",
    "kup_attempts",
    "kup_outbox",
    "kup_audit",
    "kup_monitor_history",
    "kup_alerts",
)
_LOCK_KEY = 0x6A616173  # "jaas": PostgreSQL advisory lock held while upgrading


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision this jaas knows."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


def _revision(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def _has_legacy_tables(conn: Connection) -> bool:
    names = set(inspect(conn).get_table_names())
    return any(t in names for t in JAAS_TABLES)


def _db_error(engine: Engine, exc: DBAPIError) -> DatabaseError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return DatabaseError(f"{describe(str(engine.url))}: cannot open the database: {reason}")


def current_revision(engine: Engine) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    try:
        with engine.connect() as conn:
            return _revision(conn)
    except DBAPIError as exc:
        raise _db_error(engine, exc) from None


def has_previous_release_tables(engine: Engine) -> bool:
    """Whether the database holds jaas tables but no revision (made before migrations)."""
    try:
        with engine.connect() as conn:
            return _revision(conn) is None and _has_legacy_tables(conn)
    except DBAPIError as exc:
        raise _db_error(engine, exc) from None


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the database to ``revision`` in one locked transaction.

    Returns:
        the revisions before and after.

    Raises:
        DatabaseError: the database cannot be reached, or is newer than this jaas.
    """
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # serialise concurrent upgraders
                conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
            before = _revision(conn)
            _check_known(engine, before)
            try:
                command.upgrade(_config(conn), revision)
            except CommandError as exc:  # unknown or ambiguous target revision
                raise DatabaseError(f"cannot upgrade to {revision!r}: {exc}") from None
            after = _revision(conn)
    except DBAPIError as exc:
        raise _db_error(engine, exc) from None
    return before, after


def _check_known(engine: Engine, rev: str | None) -> None:
    if rev is None:
        return
    try:
        _scripts().get_revision(rev)
    except Exception:  # alembic raises CommandError/ResolutionError for unknown ids
        raise DatabaseError(
            f"{describe(str(engine.url))}: database schema revision {rev!r} is newer than "
            "this jaas understands; upgrade jaas"
        ) from None


def ensure_schema(engine: Engine, *, readonly: bool = False) -> None:
    """Make sure ``engine``'s database has the newest schema (see the module docstring).

    Args:
        engine: from :func:`jaas.db.make_engine`.
        readonly: the engine only reads; an empty database is an error instead of being
            created, and an old SQLite database is upgraded through a separate writer.

    Raises:
        DatabaseError: unreachable or not a database, newer than this jaas, or an old
            PostgreSQL database that needs ``jaas db upgrade``.
    """
    for attempt in range(_OPEN_ATTEMPTS):
        try:
            _ensure(engine, readonly)
            return
        except DatabaseError as exc:
            # Connections racing to create a new SQLite database can get "database is
            # locked" at once, without SQLite waiting on the busy timeout (it refuses a
            # lock that could deadlock): open again; the upgrade is one transaction
            if (
                attempt + 1 < _OPEN_ATTEMPTS
                and engine.dialect.name == "sqlite"
                and "database is locked" in str(exc)
            ):
                engine.dispose()
                time.sleep(0.05 * 2**attempt)
                continue
            engine.dispose()  # no pooled connection outlives a refused open
            raise


_OPEN_ATTEMPTS = 5


def _ensure(engine: Engine, readonly: bool) -> None:
    where = describe(str(engine.url))
    try:
        with engine.connect() as conn:
            rev = _revision(conn)
            if rev == head_revision():
                return
            legacy = rev is None and _has_legacy_tables(conn)
    except DBAPIError as exc:
        raise _db_error(engine, exc) from None
    _check_known(engine, rev)
    if rev is None and not legacy:
        if readonly:
            raise DatabaseError(f"{where}: the database holds no jaas tables yet")
        upgrade(engine)
        return
    if engine.dialect.name != "sqlite":
        raise DatabaseError(
            f"{where}: the database schema is older than this jaas "
            f"({rev or 'previous release'} < {head_revision()}); "
            f"run: jaas db upgrade {where}"
        )
    if readonly:
        writer = make_engine(_sqlite_file(engine))
        try:
            upgrade(writer)
        finally:
            writer.dispose()
    else:
        upgrade(engine)


def _sqlite_file(engine: Engine) -> str:
    db = str(engine.url.database or "")
    if db.startswith("file:"):
        db = db[len("file:") :].split("?", 1)[0]
    return db
