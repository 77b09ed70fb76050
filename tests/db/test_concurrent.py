"""Processes opening one new database at the same time end with one schema, no error."""

from __future__ import annotations

import multiprocessing as mp

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
