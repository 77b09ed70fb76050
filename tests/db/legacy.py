"""A database as the release before migrations (commit 3986766) left it: schema and rows.

The schema comes verbatim from ``legacy_3986766.<dialect>.sql`` (generated from that
release's ``create_all``); the rows cover every table: a run, a RAW -> ESD lineage, a
dataset, a replica, a keep-up job with an attempt, outbox and audit rows, a monitor
history row and an active alert.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Connection, Engine, MetaData, Table, insert

HERE = Path(__file__).parent
T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
RAW = "/data/run1234/run1234.000.raw"
ESD = "/data/run1234/run1234.000.esd.root"


def create_legacy(engine: Engine) -> None:
    """Create the old schema with one row set in ``engine``'s (empty) database."""
    sql = (HERE / f"legacy_3986766.{engine.dialect.name}.sql").read_text()
    lines = [line for line in sql.splitlines() if not line.startswith("--")]
    statements = [chunk.strip() for chunk in "\n".join(lines).split(";")]
    with engine.begin() as conn:
        for stmt in statements:
            if stmt:
                conn.exec_driver_sql(stmt)
    md = MetaData()
    md.reflect(engine)
    t = md.tables
    with engine.begin() as conn:
        _put(conn, t["jaas_schema"], [{"version": 1, "applied": T0}])
        _put(
            conn,
            t["runs"],
            [{"run": 1234, "start_ns": 10, "end_ns": 20, "status": "open", "meta": {"shift": "A"}}],
        )
        common = {"run": 1234, "seq": 0, "created": T0, "status": "good", "status_reason": ""}
        _put(
            conn,
            t["files"],
            [
                {
                    "id": 1,
                    "path": RAW,
                    "kind": "raw",
                    "size": 100,
                    "adler32": "0000abcd",
                    "meta": {},
                    **common,
                },
                {
                    "id": 2,
                    "path": ESD,
                    "kind": "esd",
                    "n_events": 7,
                    "t_min": 11,
                    "t_max": 19,
                    "software_version": "0.9",
                    "meta": {"calib": "v1"},
                    **common,
                },
            ],
        )
        _put(conn, t["parentage"], [{"child_id": 2, "parent_id": 1}])
        _put(
            conn,
            t["datasets"],
            [{"id": 1, "name": "physics", "version": 1, "description": "old", "created": T0}],
        )
        _put(
            conn,
            t["dataset_files"],
            [{"dataset_id": 1, "file_id": 1}, {"dataset_id": 1, "file_id": 2}],
        )
        _put(
            conn,
            t["replicas"],
            [
                {
                    "id": 1,
                    "file_id": 2,
                    "endpoint": "tape",
                    "url": "root://eos//x.root",
                    "verified": T0,
                }
            ],
        )
        _put(
            conn,
            t["kup_jobs"],
            [
                {
                    "id": 1,
                    "file": "run1234.000.raw",
                    "stage": "a",
                    "version": "1",
                    "state": "done",
                    "attempts": 1,
                    "input_path": RAW,
                    "output_path": ESD,
                    "created": T0,
                    "updated": T0,
                }
            ],
        )
        _put(
            conn,
            t["kup_attempts"],
            [
                {
                    "id": 1,
                    "job_id": 1,
                    "number": 1,
                    "worker": "w1",
                    "started": T0,
                    "ended": T0,
                    "exit_code": 0,
                }
            ],
        )
        _put(
            conn,
            t["kup_outbox"],
            [
                {
                    "id": 1,
                    "message_id": "m-1",
                    "topic": "t.b",
                    "key": "run1234.000.raw",
                    "payload": {"path": ESD},
                    "created": T0,
                }
            ],
        )
        _put(
            conn,
            t["kup_audit"],
            [
                {
                    "id": 1,
                    "at": T0,
                    "who": "op",
                    "action": "retry",
                    "file": "run1234.000.raw",
                    "stage": "a",
                    "version": "1",
                    "from_state": "failed",
                    "to_state": "queued",
                }
            ],
        )
        _put(
            conn,
            t["kup_monitor_history"],
            [
                {
                    "id": 1,
                    "at": T0,
                    "stage": "a",
                    "queued": 0,
                    "running": 0,
                    "done": 1,
                    "failed": 0,
                    "files_per_min": 2.5,
                }
            ],
        )
        _put(
            conn,
            t["kup_alerts"],
            [
                {
                    "id": 1,
                    "rule": "lag",
                    "subject": "a",
                    "severity": "warning",
                    "message": "slow",
                    "raised": T0,
                    "last_seen": T0,
                }
            ],
        )


def _put(conn: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    for row in rows:  # one by one: the rows do not all have the same columns
        conn.execute(insert(table), row)
