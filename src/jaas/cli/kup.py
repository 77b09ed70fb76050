"""``jaas kup``: start, feed, watch and stop the keep-up production pipeline."""

from __future__ import annotations

from pathlib import Path

import click

from jaas.kup.config import KupSettings, load_stages
from jaas.kup.pipeline import down, format_status, ingest, status, up

__all__ = ["kup"]

_STATE = click.argument("state_dir", type=click.Path(file_okay=False, path_type=Path))


@click.group()
def kup() -> None:
    """Keep-up production: start, feed, watch and stop the pipeline.

    Everything of one pipeline lives in STATE_DIR (settings, pids, SQLite ledger, logs,
    products). Example: `jaas kup up kup/ && jaas kup ingest kup/ run1/*.raw && jaas kup
    status kup/ && jaas kup down kup/`.
    """


@kup.command("up")
@_STATE
@click.option("--stages", type=click.Path(dir_okay=False, exists=True), help="Stages YAML.")
@click.option("--db", "db_url", help="Ledger database URL (default: SQLite in STATE_DIR).")
@click.option("--bootstrap", help="Kafka brokers host:port (default: start the embedded one).")
@click.option("--executor", default="local", show_default=True, help="Executor name.")
@click.option("--slots", type=int, default=2, show_default=True, help="Cpus per stage worker.")
@click.option(
    "--session-timeout-ms",
    type=int,
    default=6000,
    show_default=True,
    help="Consumer-group session timeout (a new group takes about this long to join).",
)
def up_cmd(
    state_dir: Path,
    stages: str | None,
    db_url: str | None,
    bootstrap: str | None,
    executor: str,
    slots: int,
    session_timeout_ms: int,
) -> None:
    """Start the broker, the outbox relay and one worker per stage."""
    if stages is not None:
        stages = str(Path(stages).resolve())
        load_stages(stages)
    settings = KupSettings(
        state_dir=state_dir.resolve(),
        db_url=db_url,
        bootstrap=bootstrap,
        stages=stages,
        executor=executor,
        slots=slots,
        session_timeout_ms=session_timeout_ms,
    )
    state = up(settings)
    workers = ", ".join(f"{k} ({v})" for k, v in state["workers"].items())
    click.echo(f"broker {state['bootstrap']}; relay pid {state['relay']}; workers: {workers}")


@kup.command("ingest")
@_STATE
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def ingest_cmd(state_dir: Path, paths: tuple[str, ...]) -> None:
    """Register RAW files with the pipeline (queued for the first stage)."""
    keys = ingest(state_dir, paths)
    skipped = len(paths) - len(keys)
    click.echo(f"queued {len(keys)} file(s)" + (f", {skipped} already known" if skipped else ""))


@kup.command("status")
@_STATE
def status_cmd(state_dir: Path) -> None:
    """Show processes, files per stage and state, and failures with their reasons."""
    click.echo(format_status(status(state_dir)))


@kup.command("down")
@_STATE
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Grace seconds.")
def down_cmd(state_dir: Path, timeout: float) -> None:
    """Stop the workers, the relay and the embedded broker."""
    stopped = down(state_dir, timeout)
    click.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
