"""``jaas kup``: start, feed, watch and stop the keep-up production pipeline."""

from __future__ import annotations

from pathlib import Path

import click

from jaas.cli.kup_text import format_reset_plan, format_runs, format_status
from jaas.kup.config import KupSettings, load_stages
from jaas.kup.pipeline import down, ingest_report, status, up

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
@click.option(
    "--slots", type=click.IntRange(min=1), default=2, show_default=True,
    help="Cpus per stage worker.",
)  # fmt: skip
@click.option(
    "--session-timeout-ms",
    type=int,
    default=6000,
    show_default=True,
    help="Consumer-group session timeout (a new group takes about this long to join).",
)
@click.option(
    "--warm/--cold", default=True, show_default=True,
    help="Local executor: fork attempts from a pre-imported runner, or start a new Python each.",
)  # fmt: skip
def up_cmd(
    state_dir: Path,
    stages: str | None,
    db_url: str | None,
    bootstrap: str | None,
    executor: str,
    slots: int,
    session_timeout_ms: int,
    warm: bool,
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
        warm=warm,
    )
    state = up(settings)
    workers = ", ".join(f"{k} ({v})" for k, v in state["workers"].items())
    click.echo(f"broker {state['bootstrap']}; relay pid {state['relay']}; workers: {workers}")


@kup.command("ingest")
@_STATE
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def ingest_cmd(state_dir: Path, paths: tuple[str, ...]) -> None:
    """Register RAW files with the pipeline (queued for the first stage)."""
    rep = ingest_report(state_dir, paths)
    parts = [f"queued {len(rep.queued)} file(s)"]
    if rep.known:
        parts.append(f"{len(rep.known)} already known")
    if rep.duplicates:
        parts.append(f"{len(rep.duplicates)} duplicate(s) of known content, not published again")
    click.echo(", ".join(parts))
    for name, same in rep.duplicates:
        click.echo(f"  {name}: same content as {same}")
    for _, why in rep.refused:
        click.echo(f"refused: {why}", err=True)
    if rep.refused:
        raise click.exceptions.Exit(1)


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


# ---- operators' tools: retry, reset, drop directory, end-of-run manifests ------------------


def _who() -> str:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@kup.command("retry")
@_STATE
@click.option("--file", "files", multiple=True, help="Only this file (repeatable).")
@click.option("--run", type=int, help="Only files of this run (manifest, or names runN_...).")
@click.option(
    "--state",
    "states",
    type=click.Choice(["failed", "dead"]),
    multiple=True,
    help="Only jobs in this state (default: failed and dead).",
)
@click.option("--stage", help="Only jobs of this stage.")
@click.option("--why", default="bulk replay", show_default=True, help="Reason, for the audit.")
def retry_cmd(
    state_dir: Path,
    files: tuple[str, ...],
    run: int | None,
    states: tuple[str, ...],
    stage: str | None,
    why: str,
) -> None:
    """Re-queue failed or dead jobs (bulk replay by state, run, stage or file), audited."""
    from jaas.kup.ledger import Ledger
    from jaas.kup.manifest import files_of_run
    from jaas.kup.states import State

    settings = KupSettings.load(state_dir)
    ledger = Ledger(settings.database, settings.pipeline())
    try:
        chosen: set[str] | None = set(files) if files else None
        if run is not None:
            in_run = files_of_run(state_dir, run, (j["file"] for j in ledger.jobs_of()))
            chosen = in_run if chosen is None else chosen & in_run
        if stage is not None:
            settings.pipeline().stage(stage)  # ConfigError naming the stages
        n = ledger.retry(
            stage=stage,
            who=_who(),
            states=[State(s) for s in states] if states else None,
            files=chosen,
            note=why,
        )
    finally:
        ledger.close()
    click.echo(f"re-queued {n} job(s)" + ("" if n else " (nothing matched)"))


@kup.command("reset")
@_STATE
@click.argument("file")
@click.option("--stage", required=True, help="Reset from this stage downstream.")
@click.option("--yes", is_flag=True, help="Do it (without: only show what would be reset).")
@click.option("--why", help="Reason, for the audit (required with --yes).")
def reset_cmd(state_dir: Path, file: str, stage: str, yes: bool, why: str | None) -> None:
    """Reset FILE from STAGE downstream: delete its products there, re-queue, audited."""
    from jaas.kup.pipeline import plan_reset, reset_file

    plan = plan_reset(state_dir, file, stage)
    click.echo(format_reset_plan(plan))
    if not yes:
        click.echo("nothing changed: add --yes --why '...' to reset")
        raise click.exceptions.Exit(1)
    if not why:
        raise click.UsageError("--why is required with --yes (it goes to the audit log)")
    n = reset_file(state_dir, plan, who=_who(), why=why)
    click.echo(f"reset {n} job(s) of {file}; deleted {len(plan.delete)} product(s)")


@kup.command("watch")
@_STATE
@click.argument("drop_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds.")
@click.option("--pattern", default="*.raw", show_default=True, help="Files to ingest.")
@click.option(
    "--stable-polls",
    type=int,
    default=2,
    show_default=True,
    help="Scans with unchanged size/mtime before a file counts as complete (or NAME.done).",
)
@click.option("--once", is_flag=True, help="Scan once and exit (for cron).")
def watch_cmd(
    state_dir: Path, drop_dir: Path, interval: float, pattern: str, stable_polls: int, once: bool
) -> None:
    """Poll DROP_DIR and ingest complete RAW files (and manifests) as they arrive."""
    import signal
    import threading

    from jaas.kup.dropdir import DropDirWatcher

    stop = threading.Event()
    if not once:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with DropDirWatcher(state_dir, drop_dir, pattern=pattern, stable_polls=stable_polls) as w:
        while not stop.is_set():
            res = w.scan()
            for name in res.ingested:
                click.echo(f"ingested {name}")
            for text in res.manifests:
                click.echo(f"manifest of {text} registered")
            for err in res.errors:
                click.echo(f"error: {err}", err=True)
            if once:
                if res.waiting:
                    click.echo(f"still being written: {', '.join(res.waiting)}")
                break
            try:
                stop.wait(interval)
            except KeyboardInterrupt:
                break


@kup.command("manifest")
@_STATE
@click.argument("manifests", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--run", "runs", type=int, multiple=True, help="Show only this run.")
@click.option("--check", is_flag=True, help="Exit 1 unless every shown run is complete.")
def manifest_cmd(
    state_dir: Path, manifests: tuple[str, ...], runs: tuple[int, ...], check: bool
) -> None:
    """Register end-of-run manifests and show each run's completeness."""
    from jaas.kup.manifest import register_manifest, run_reports

    KupSettings.load(state_dir)  # a clear error if there is no pipeline here
    for path in manifests:
        m = register_manifest(state_dir, path)
        click.echo(f"registered run {m.run}: {len(m.files)} file(s)")
    reports = run_reports(state_dir, runs or None)
    click.echo(format_runs(reports) or "no manifest registered")
    if check and (not reports or not all(r.complete for r in reports)):
        raise click.exceptions.Exit(1)


# monitoring commands (monitor, alerts, metrics) live in their own module
from jaas.cli.kup_monitor import COMMANDS as _MONITOR_COMMANDS  # noqa: E402

for _command in _MONITOR_COMMANDS:
    kup.add_command(_command)
