"""Alembic migrations: empty databases reach head, the previous release's upgrade in place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, MetaData, Select, inspect, select, text

import jaas.kup.alerts
import jaas.kup.identity
import jaas.kup.monitor
import jaas.portal.auth
import jaas.portal.routes_alerts
import jaas.transfer.tables
from jaas import db
from jaas.cli.main import cli
from jaas.errors import DatabaseError
from jaas.kup.alerts import AlertStore
from jaas.kup.config import PipelineConfig
from jaas.kup.ledger import Ledger
from jaas.kup.monitor import read_history
from jaas.kup.states import JobKey, State
from jaas.store import Catalog
from jaas.store.models import Base
from tests.db.legacy import ESD, RAW, create_legacy

CONFIG = PipelineConfig.model_validate({"stages": [{"name": "a", "input": "t.a", "entry": "m:f"}]})


def _models() -> MetaData:
    """Every table the code defines: catalog, ledger, monitor, alerts, portal, transfer."""
    md = MetaData()
    sources = (
        Base.metadata,
        jaas.kup.ledger.metadata,
        jaas.portal.auth.metadata,
        jaas.portal.routes_alerts.metadata,
        jaas.transfer.tables.metadata,
    )
    for source in sources:
        for table in source.tables.values():
            table.to_metadata(md)
    assert jaas.kup.identity.inputs_table is not None  # kup_inputs joins the ledger metadata
    assert "kup_alerts" in md.tables and "kup_monitor_history" in md.tables
    portal = {"portal_tokens", "portal_alert_actions"}
    assert portal | {"transfer_requests", "transfer_replicas"} <= set(md.tables)
    assert jaas.kup.alerts.alerts_table is not None and jaas.kup.monitor.history_table is not None
    return md


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _diff(url: str) -> list[object]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            return [
                d
                for d in compare_metadata(ctx, _models())
                if d[0] != "remove_table" or d[1].name != db.VERSION_TABLE
            ]
    finally:
        engine.dispose()


def test_empty_database_upgrades_to_head_with_every_table(db_url):
    result = CliRunner().invoke(cli, ["db", "upgrade", db_url])
    assert result.exit_code == 0, result.output
    assert f"-> {db.head_revision()}" in result.output
    assert set(_models().tables) | {db.VERSION_TABLE} == _tables(db_url)
    assert _diff(db_url) == []  # the migrated schema is exactly what the code declares
    again = CliRunner().invoke(cli, ["db", "current", db_url])
    assert again.exit_code == 0 and again.output.strip() == f"{db.head_revision()} (head)"


def test_catalog_ledger_monitor_alerts_share_one_version_table(db_url):
    with Catalog(db_url):
        pass
    ledger = Ledger(db_url, CONFIG)
    AlertStore(ledger.engine)
    read_history(ledger)
    ledger.close()
    names = _tables(db_url)
    assert db.VERSION_TABLE in names and "jaas_schema" not in names
    assert not {n for n in names if "version" in n} - {db.VERSION_TABLE}


def _upgrade_legacy(url: str) -> None:
    engine = db.make_engine(url)
    create_legacy(engine)
    assert db.current_revision(engine) is None
    engine.dispose()
    result = CliRunner().invoke(cli, ["db", "upgrade", url])
    assert result.exit_code == 0, result.output
    assert f"upgraded unversioned -> {db.head_revision()}" in result.output


def test_previous_release_database_upgrades_in_place_with_nothing_lost(db_url, tmp_path):
    _upgrade_legacy(db_url)
    assert _diff(db_url) == []
    with Catalog(db_url) as cat:
        run = cat.get_run(1234)
        assert (run.start, run.end, run.meta) == (10, 20, {"shift": "A"})
        esd = cat.get_file(ESD)
        assert (esd.n_events, esd.t_min, esd.t_max, esd.meta) == (7, 11, 19, {"calib": "v1"})
        assert [f.path for f in cat.lineage(esd.id)] == [RAW]
        assert [f.path for f in cat.dataset_files("physics", 1)] == [RAW, ESD]
        assert [r.url for r in cat.replicas(esd.id)] == ["root://eos//x.root"]
        (tmp_path / "run1234.001.raw").write_bytes(b"x")
        new = cat.add_file(tmp_path / "run1234.001.raw", kind="raw", run=1234, seq=1)
        assert new.id == 3  # the id sequence continues after the old rows
    ledger = Ledger(db_url, CONFIG)
    try:
        job = ledger.job(JobKey("run1234.000.raw", "a", "1"))
        assert job is not None and job.state is State.DONE
        assert [a["worker"] for a in ledger.attempts_of(job.key)] == ["w1"]
        assert [a["action"] for a in ledger.audit_log("run1234.000.raw")] == ["retry"]
        assert [r["files_per_min"] for r in read_history(ledger)] == [2.5]
        assert [a["message"] for a in AlertStore(ledger.engine).active()] == ["slow"]
        assert [m.message_id for m in ledger.unpublished()] == ["m-1"]
    finally:
        ledger.close()


def test_embedded_sqlite_catalog_of_previous_release_upgrades_when_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = db.make_engine(url)
    create_legacy(engine)
    engine.dispose()
    with Catalog(tmp_path / "old.db", readonly=True) as cat:  # even a read-only opener
        assert [d.name for d in cat.datasets()] == ["physics"]
    engine = db.make_engine(url)
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


@pytest.mark.postgres
def test_postgres_database_of_previous_release_needs_an_operator_upgrade(pg_database_url):
    engine = db.make_engine(pg_database_url)
    create_legacy(engine)
    engine.dispose()
    with pytest.raises(DatabaseError, match="run: jaas db upgrade"):
        Catalog(pg_database_url)
    with pytest.raises(DatabaseError, match="run: jaas db upgrade"):
        Ledger(pg_database_url, CONFIG)
    result = CliRunner().invoke(cli, ["db", "current", pg_database_url])
    assert result.exit_code == 0 and "made by a jaas before migrations" in result.output
    _upgrade_legacy_again = CliRunner().invoke(cli, ["db", "upgrade", pg_database_url])
    assert _upgrade_legacy_again.exit_code == 0
    with Catalog(pg_database_url) as cat:
        assert cat.get_file(RAW).adler32 == "0000abcd"


def test_catalog_of_an_unknown_newer_release_is_refused(db_url):
    with Catalog(db_url):
        pass
    engine = db.make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {db.VERSION_TABLE} SET version_num = 'ffff9999'"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="newer than this jaas"):
        Catalog(db_url)
    result = CliRunner().invoke(cli, ["db", "upgrade", db_url])
    assert result.exit_code == 1 and "newer than this jaas" in str(result.exception or "")


def test_old_catalog_version_table_above_one_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = db.make_engine(url)
    create_legacy(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO jaas_schema (version, applied) VALUES (2, '2026-01-01')"))
    with pytest.raises(DatabaseError, match="version 2 is newer"):
        db.upgrade(engine)
    assert db.current_revision(engine) is None  # nothing half-done
    assert "jaas_schema" in inspect(engine).get_table_names()
    engine.dispose()


def test_previous_release_catalog_without_ledger_tables_gets_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'cat.db'}"
    engine = db.make_engine(url)
    sql = (Path(__file__).parent / "legacy_3986766.sqlite.sql").read_text()
    lines = [line for line in sql.splitlines() if not line.startswith("--")]
    with engine.begin() as conn:  # only the catalog part, as a catalog-only user had it
        for stmt in "\n".join(lines).split(";"):
            if stmt.strip() and "kup_" not in stmt:
                conn.exec_driver_sql(stmt)
    engine.dispose()
    ledger = Ledger(url, CONFIG)
    ledger.submit_files([])
    ledger.close()
    assert {"kup_jobs", "kup_alerts", "kup_monitor_history", "runs"} <= _tables(url)
    assert _diff(url) == []


def test_tables_made_by_create_all_before_0005_are_adopted(db_url):
    """A DB at 0004 whose portal and transfer tables were made by ``create_all`` (as the
    code did before 0005) upgrades to head, keeping their rows, with no schema drift."""
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, "0004")
        jaas.portal.auth.metadata.create_all(engine)
        jaas.transfer.tables.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                jaas.portal.auth.tokens_table.insert().values(
                    name="old", hash="h" * 64, scope="read", created=dt.datetime.now(dt.UTC)
                )
            )
        assert db.upgrade(engine) == ("0004", db.head_revision())
        with engine.connect() as conn:
            names = conn.execute(select(jaas.portal.auth.tokens_table.c.name)).scalars().all()
        assert names == ["old"]
    finally:
        engine.dispose()
    assert _diff(db_url) == []


def _plan(engine: Engine, query: Select[Any]) -> str:
    stmt = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {stmt}").all()
            return "\n".join(str(r[-1]) for r in rows)
        conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: is the index usable?
        return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {stmt}").all())


def test_read_model_queries_use_the_0005_indexes(db_url):
    """EXPLAIN on each backend: the read models' hot queries go through the new indexes."""
    from jaas.kup.ledger import attempts, jobs, outbox

    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine)
        since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        queries = {
            "ix_kup_jobs_stage_state_id ix_kup_jobs_state_id": select(jobs.c.id)
            .where(jobs.c.stage == "a", jobs.c.state == "dead", jobs.c.id > 5)
            .order_by(jobs.c.id)
            .limit(10),
            "ix_kup_jobs_state_id": select(jobs.c.id)
            .where(jobs.c.state == "dead")
            .order_by(jobs.c.id)
            .limit(10),
            "ix_kup_jobs_updated_id": select(jobs.c.id)
            .order_by(jobs.c.updated.desc(), jobs.c.id.desc())
            .limit(10),
            "ix_kup_attempts_ended": select(attempts.c.id).where(attempts.c.ended >= since),
            "ix_kup_outbox_key": select(outbox.c.id).where(outbox.c.key == "run1.raw"),
        }
        for indexes, query in queries.items():  # (on empty tables either may win)
            plan = _plan(engine, query)
            assert any(ix in plan for ix in indexes.split()), (indexes, plan)
    finally:
        engine.dispose()
