"""``jaas cluster up|down|status``: a local Dask (or Spark standalone) cluster of real
processes for analyses."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["cluster"]

_state_opt = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where addresses, pids and logs are kept [default: $JAAS_CLUSTER_DIR or ~/.jaas/cluster].",
)


@click.group()
def cluster() -> None:
    """Start or stop a local Dask cluster (scheduler + worker processes) for analyses.

    Connect from Python with `jaas.cluster.connect()` (no address: this cluster).
    """


@cluster.command()
@click.option(
    "--engine", type=click.Choice(["dask", "spark"]), default="dask", show_default=True,
    help="Dask scheduler + workers, or a Spark standalone master + workers.",
)  # fmt: skip
@click.option("-n", "--workers", default=2, show_default=True, help="Worker processes.")
@click.option("--threads-per-worker", default=1, show_default=True, help="Threads per worker.")
@click.option(
    "--memory-limit", default="auto", show_default=True,
    help="Memory per worker, e.g. '4GiB' (the column cache takes half).",
)  # fmt: skip
@click.option("--host", default="127.0.0.1", show_default=True, help="Scheduler host.")
@click.option("--port", default=0, show_default=True, help="Scheduler port (0: any free).")
@click.option("--dashboard/--no-dashboard", default=True, show_default=True)
@_state_opt
def up(
    engine: str,
    workers: int,
    threads_per_worker: int,
    memory_limit: str,
    host: str,
    port: int,
    dashboard: bool,
    state_dir: Path | None,
) -> None:
    """Start a scheduler and N worker processes; print the address and dashboard link."""
    if engine == "spark":
        _spark_up(workers, threads_per_worker, memory_limit, host, port, state_dir)
        return
    from jaas.cluster.local import start

    lc = start(
        workers,
        threads_per_worker=threads_per_worker,
        memory_limit=memory_limit,
        host=host,
        port=port,
        dashboard=dashboard,
        state_dir=state_dir,
    )
    click.echo(f"scheduler  {lc.address}")
    click.echo(f"dashboard  {lc.dashboard or '-'}")
    click.echo(f"workers    {len(lc.worker_pids)} (pids {', '.join(map(str, lc.worker_pids))})")
    click.echo(f"state      {lc.state_dir}")
    click.echo(f"connect    jaas.cluster.connect({lc.address!r}); stop: jaas cluster down")


@cluster.command()
@_state_opt
def down(state_dir: Path | None) -> None:
    """Stop the scheduler and workers started by `jaas cluster up`."""
    from jaas.spark import local as spark_local

    if _spark_recorded(state_dir):
        pids = spark_local.stop(state_dir)
        click.echo(f"stopped Spark: {len(pids)} process(es): {', '.join(map(str, pids)) or '-'}")
        if not ((state_dir or _default_dir()) / "cluster.json").exists():
            return
    from jaas.cluster.local import stop

    pids = stop(state_dir)
    click.echo(f"stopped {len(pids)} process(es): {', '.join(map(str, pids)) or '-'}")


@cluster.command()
@_state_opt
def status(state_dir: Path | None) -> None:
    """Workers, their cache statistics and the files they own."""
    if _spark_recorded(state_dir):
        from jaas.spark.local import recorded

        sa = recorded(state_dir)
        click.echo(f"spark master {sa.master_url}  ({sa.ui_url})")
        for w in sa.workers():
            click.echo(f"{w.get('id')}  {w.get('host')}  {w.get('cores')} core(s)")
        return
    from jaas.cluster.client import connect
    from jaas.cluster.client import state_dir as default_dir

    sdir = state_dir or default_dir()
    if not (sdir / "scheduler.json").is_file():
        from jaas.errors import ConfigError

        raise ConfigError(
            f"no cluster recorded in {sdir}: start one with `jaas cluster up`"
            + ("" if state_dir else " (or give its --state-dir)")
        )
    with connect(str(sdir / "scheduler.json")) as c:
        click.echo(repr(c))
        reg = c.registry()
        for addr, stats in c.cache_stats().items():
            owned = reg["workers"].get(addr, {}).get("files", [])
            click.echo(f"{addr}  {len(owned)} file(s)  {stats}")
        for path, worker in reg["lost"].items():
            click.echo(f"LOST {path} (was on {worker})")


def _default_dir() -> Path:
    from jaas.settings import settings

    return settings().cluster_dir


def _spark_recorded(state_dir: Path | None) -> bool:
    from jaas.spark.local import STATE_FILE

    return ((state_dir or _default_dir()) / STATE_FILE).exists()


def _spark_up(
    workers: int, cores: int, memory: str, host: str, port: int, state_dir: Path | None
) -> None:
    from jaas.spark.local import start

    sa = start(
        workers, cores=cores, host=host,
        memory="1g" if memory == "auto" else memory.lower().replace("ib", "").rstrip("b"),
        port=port, state_dir=state_dir,
    )  # fmt: skip
    click.echo(f"master     {sa.master_url}")
    click.echo(f"status     {sa.ui_url}")
    click.echo(f"workers    {len(sa.worker_pids)} (pids {', '.join(map(str, sa.worker_pids))})")
    click.echo(f"state      {sa.state_dir}")
    click.echo(f"connect    jaas.connect({sa.master_url!r}); stop: jaas cluster down")
