"""jaas.db engines: URL handling, validation with one-line errors, SQLite settings, retries."""

from __future__ import annotations

import socket
import sqlite3
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from jaas import db
from jaas.cli.main import cli, main
from jaas.errors import DatabaseError, JaasError
from jaas.store import Catalog


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_plain_path_and_url_name_the_same_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert db.database_url("sub/c.db") == f"sqlite:///{tmp_path / 'sub' / 'c.db'}"
    assert db.database_url("sqlite:///x.db") == "sqlite:///x.db"
    with Catalog("sub/c.db") as cat:
        assert cat.url == f"sqlite:///{tmp_path / 'sub' / 'c.db'}"
    assert (tmp_path / "sub" / "c.db").exists()  # missing directory created for a writer


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty database URL"),
        ("postgresql:/host/db", "malformed database URL"),
        ("sqlite:///a\nb.db", "newline"),
        ("nosuchdb+driver://h/d", "unsupported database URL"),
    ],
)
def test_bad_urls_are_one_line_database_errors(url, message):
    with pytest.raises(DatabaseError, match=message) as err:
        Catalog(url)
    assert "\n" not in str(err.value)


def test_directory_non_database_file_and_closed_port_are_refused(tmp_path):
    with pytest.raises(DatabaseError, match="is a directory"):
        Catalog(tmp_path)
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database\n")
    with pytest.raises(DatabaseError, match="not a SQLite database"):
        Catalog(junk)
    assert junk.read_text() == "not a database\n"  # left untouched
    url = f"postgresql+psycopg://u@127.0.0.1:{_closed_port()}/jaas"
    with pytest.raises(DatabaseError, match=r"cannot open the database.*refused"):
        Catalog(url)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatabaseError, match="is not a directory"):
        Catalog(blocker / "c.db")


def test_read_only_open_never_creates_a_database(tmp_path):
    missing = tmp_path / "none" / "catalog.db"
    with pytest.raises(DatabaseError, match="no database at"):
        Catalog(missing, readonly=True)
    assert not missing.parent.exists()
    with Catalog(tmp_path / "c.db") as cat:
        cat.add_run(1)
    with Catalog(tmp_path / "c.db", readonly=True) as ro:
        assert [r.run for r in ro.runs()] == [1]
        with pytest.raises(OperationalError, match="readonly"):
            ro.add_run(2)


def test_sqlite_engine_settings(tmp_path):
    engine = db.make_engine(tmp_path / "x.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 60000
    engine.dispose()


def test_writers_wait_for_each_other_instead_of_failing(tmp_path):
    engine = db.make_engine(tmp_path / "x.db")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for _ in range(20):
                with engine.begin() as conn:
                    n = conn.execute(text("SELECT count(*) FROM t")).scalar()
                    conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with engine.connect() as conn:  # read-then-write under BEGIN IMMEDIATE: no lost update
        assert sorted(conn.execute(text("SELECT n FROM t")).scalars()) == list(range(80))
    engine.dispose()


def _locked() -> OperationalError:
    return OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))


def test_retry_repeats_transient_errors_only():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "ok"

    assert db.retry(flaky, delay=0) == "ok" and len(calls) == 3

    def always_locked() -> None:
        raise _locked()

    with pytest.raises(OperationalError):
        db.retry(always_locked, attempts=2, delay=0)

    def race() -> None:
        calls.append(1)
        raise IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE"))

    calls.clear()
    with pytest.raises(IntegrityError):
        db.retry(race, delay=0)
    assert len(calls) == 1  # not a race unless asked
    calls.clear()
    with pytest.raises(IntegrityError):
        db.retry(race, races=True, attempts=3, delay=0)
    assert len(calls) == 3

    def syntax() -> None:
        calls.append(1)
        raise OperationalError("SELEC", {}, sqlite3.OperationalError("syntax error"))

    calls.clear()
    with pytest.raises(OperationalError):
        db.retry(syntax, delay=0)
    assert len(calls) == 1


def _run(argv: list[str]) -> int:
    try:
        result = main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(result or 0)


def test_db_commands_give_one_line_errors(tmp_path, capsys):
    assert _run(["db", "current", str(tmp_path / "missing.db")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no database at" in err
    assert not (tmp_path / "missing.db").exists()
    assert _run(["db", "upgrade", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    result = CliRunner().invoke(cli, ["db", "upgrade", "--help"])
    assert result.exit_code == 0 and "SQLite path" in result.output


def test_database_error_is_a_jaas_error():
    assert issubclass(DatabaseError, JaasError)


def test_messages_never_show_a_password():
    url = f"postgresql+psycopg://op:s3cret@127.0.0.1:{_closed_port()}/jaas"
    with pytest.raises(DatabaseError) as err:
        Catalog(url)
    assert "s3cret" not in str(err.value) and "op:***@127.0.0.1" in str(err.value)
