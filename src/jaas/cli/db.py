"""``jaas db``: the schema revision of a jaas database, and upgrading it in place."""

from __future__ import annotations

import click

from jaas import db as jdb

__all__ = ["db"]


@click.group("db")
def db() -> None:
    """Schema of the jaas database (catalog, ledger, monitor history, alerts).

    An embedded SQLite database is upgraded automatically when jaas opens it; a
    PostgreSQL database is upgraded by an operator with `jaas db upgrade URL`.
    """


@db.command("current")
@click.argument("url")
def current(url: str) -> None:
    """Print the schema revision of the database at URL and whether it is the newest.

    \b
    URL: a SQLAlchemy URL (sqlite:///PATH, postgresql+psycopg://USER@HOST/DB) or a SQLite path.
    The database is only read; a SQLite file that does not exist is not created.
    """
    engine = jdb.make_engine(url, readonly=True)
    try:
        rev = jdb.current_revision(engine)
        legacy = rev is None and jdb.has_previous_release_tables(engine)
    finally:
        engine.dispose()
    head = jdb.head_revision()
    if legacy:
        click.echo(
            f"no revision: made by a jaas before migrations (run `jaas db upgrade`); "
            f"newest is {head}"
        )
    elif rev is None:
        click.echo(f"no revision: an empty database; newest is {head}")
    elif rev == head:
        click.echo(f"{rev} (head)")
    else:
        click.echo(f"{rev} (newest is {head}: run `jaas db upgrade`)")


@db.command("upgrade")
@click.argument("url")
@click.option("--to", "revision", default="head", show_default=True, help="Target revision.")
def upgrade(url: str, revision: str) -> None:
    """Upgrade the database at URL in place to the newest schema, keeping every row.

    \b
    URL: a SQLAlchemy URL (sqlite:///PATH, postgresql+psycopg://USER@HOST/DB) or a SQLite path.
    An empty database gets every table; one made by an older jaas is migrated. The
    upgrade runs in one transaction: it either completes or changes nothing.
    """
    engine = jdb.make_engine(url)
    try:
        before, after = jdb.upgrade(engine, revision)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"already at {after}")
    else:
        click.echo(f"upgraded {before or 'unversioned'} -> {after}")
