"""Engine creation, URL handling and the retry helper shared by catalog and ledger.

SQLite (the embedded default) gets WAL journaling, foreign keys, a 60 s busy timeout and
``BEGIN IMMEDIATE`` for every transaction of a writing engine, so that concurrent writers
queue on the lock instead of failing when a read transaction tries to become a write one.
PostgreSQL gets ``pool_pre_ping`` so that a restarted server is reconnected transparently.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.pool import StaticPool

from jaas._io import make_dirs
from jaas.errors import DatabaseError

__all__ = [
    "BUSY_TIMEOUT_S",
    "database_url",
    "describe",
    "is_sqlite",
    "make_engine",
    "retry",
    "sqlite_path",
]

BUSY_TIMEOUT_S = 60
_SQLITE_MAGIC = b"SQLite format 3\x00"
_T = TypeVar("_T")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")


def database_url(url: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of ``url``: a URL as is, a plain path as a SQLite file URL.

    Raises:
        DatabaseError: the text is empty or not a valid URL.
    """
    text = os.fspath(url).strip()
    if not text:
        raise DatabaseError(
            "empty database URL: give a SQLite path or a URL such as sqlite:///x.db"
        )
    if "\n" in text or "\x00" in text:
        raise DatabaseError(f"database URL {text!r} contains a newline or NUL character")
    if "://" not in text:
        if _SCHEME.match(text):  # "postgresql:/host/db": a mistyped URL, not a file name
            raise DatabaseError(
                f"malformed database URL {text!r}: a URL needs '://' after its scheme "
                "(write ./NAME for a SQLite file whose name has a colon)"
            )
        path = Path(text).expanduser()
        return f"sqlite:///{path.absolute()}"
    _parse(text)
    return text


def _parse(text: str) -> URL:
    try:
        return make_url(text)
    except ArgumentError:
        raise DatabaseError(
            f"malformed database URL {_hide(text)!r}: expected sqlite:///PATH, "
            "postgresql+psycopg://USER@HOST:PORT/DB or a plain SQLite file path"
        ) from None


def _hide(text: str) -> str:
    try:
        return make_url(text).render_as_string(hide_password=True)
    except ArgumentError:
        return text


def describe(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return _hide(url)


def is_sqlite(url: str) -> bool:
    """Whether ``url`` (a URL from :func:`database_url`) is a SQLite database."""
    return _parse(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for in-memory databases and other backends."""
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    db = str(parsed.database)
    if db.startswith("file:"):  # sqlite URI filename
        db = db[len("file:") :].split("?", 1)[0]
    return Path(db)


def _check_sqlite_file(url: str, path: Path, *, readonly: bool) -> None:
    where = describe(url)
    if path.is_dir():
        raise DatabaseError(f"{where}: {path} is a directory, not a database file")
    if path.exists():
        try:
            with path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise DatabaseError(f"{where}: cannot read {path}: {exc.strerror}") from None
        if head and head != _SQLITE_MAGIC:
            raise DatabaseError(f"{where}: {path} exists but is not a SQLite database")
        return
    if readonly:
        raise DatabaseError(f"{where}: no database at {path} (nothing has been stored there yet)")
    if path.parent.exists() and not path.parent.is_dir():
        raise DatabaseError(f"{where}: {path.parent} is not a directory")
    make_dirs(path.parent, DatabaseError, f"{where}: ")
    if not os.access(path.parent, os.W_OK):
        raise DatabaseError(f"{where}: directory {path.parent} is not writable")


def make_engine(url: str | os.PathLike[str], *, readonly: bool = False) -> Engine:
    """A SQLAlchemy engine for ``url`` (a URL or a plain SQLite path), validated.

    Args:
        url: database URL or SQLite file path. Missing parent directories of a SQLite file
            are created unless ``readonly``.
        readonly: open for reading only; a SQLite file that does not exist is an error and
            is never created.

    Raises:
        DatabaseError: malformed URL, unknown driver, a directory or a non-database file,
            a missing database when ``readonly``, a directory that cannot be created.
    """
    text = database_url(url)
    parsed = _parse(text)
    if parsed.get_backend_name() != "sqlite":
        try:
            return create_engine(parsed, pool_pre_ping=True)
        except (NoSuchModuleError, ArgumentError, ImportError) as exc:
            raise DatabaseError(f"{describe(text)}: unsupported database URL: {exc}") from None
    path = sqlite_path(text)
    memory = path is None
    if path is not None:
        _check_sqlite_file(text, path, readonly=readonly)
        if readonly:
            parsed = parsed.set(database=f"file:{path}?mode=ro", query={"uri": "true"})
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    }
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(parsed, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        if not memory and not readonly:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock at BEGIN, so concurrent writers wait (busy timeout)
        # instead of failing when a read transaction tries to become a write one.
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True  # connection dropped (server restart): the pool reconnects
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        return any(
            word in text
            for word in ("locked", "busy", "could not serialize", "deadlock", "connection")
        )
    return False


def retry(
    attempt: Callable[[], _T],
    *,
    attempts: int = 5,
    races: bool = False,
    delay: float = 0.01,
) -> _T:
    """Run ``attempt()`` (one whole transaction) again on transient errors.

    Transient errors are a locked/busy SQLite database, a serialisation failure or
    deadlock, and a dropped connection. With ``races``, an IntegrityError (a concurrent
    writer inserted the same key first) is retried too: the next attempt sees that row.

    Args:
        attempt: a callable that opens, runs and commits one transaction.
        attempts: how many times to try in total.
        races: also retry IntegrityError.
        delay: first pause in seconds; it grows linearly.
    """
    for i in range(attempts):
        try:
            return attempt()
        except IntegrityError:
            if not races or i == attempts - 1:
                raise
        except DBAPIError as exc:
            if not _transient(exc) or i == attempts - 1:
                raise
        time.sleep(delay * (i + 1))
    raise AssertionError("unreachable")
