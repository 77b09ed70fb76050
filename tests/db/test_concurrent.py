"""Processes opening one new database at the same time end with one schema, no error."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from jaas import db


def _open(url: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        from jaas.store import Catalog

        with Catalog(url) as cat:
            cat.add_run(1)
        queue.put("ok")
    except BaseException as exc:  # reported to the parent
        queue.put(repr(exc))


def test_concurrent_first_opens_create_the_schema_once(db_url):
    ctx = mp.get_context("fork")  # nothing of the database is open in this process yet
    queue = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(db_url, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert results == ["ok"] * 4
    engine = db.make_engine(db_url)
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_a_locked_new_sqlite_database_is_opened_again(tmp_path, monkeypatch) -> None:
    # the race (SQLite refusing a lock at once while connections create a new database)
    # cannot be caused on demand: the first two opens are made to fail as it fails
    from jaas.db import make_engine, migrate
    from jaas.errors import DatabaseError

    real, calls = migrate._ensure, []

    def flaky(engine, readonly):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= 2:
            raise DatabaseError("x.db: cannot open the database: database is locked")
        return real(engine, readonly)

    monkeypatch.setattr(migrate, "_ensure", flaky)
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    migrate.ensure_schema(engine)
    assert len(calls) == 3 and migrate.current_revision(engine) == migrate.head_revision()

    def broken(engine, readonly):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise DatabaseError("x.db: cannot open the database: file is not a database")

    monkeypatch.setattr(migrate, "_ensure", broken)
    calls.clear()
    with pytest.raises(DatabaseError, match="not a database"):
        migrate.ensure_schema(engine)
    assert len(calls) == 1  # other errors are not retried
