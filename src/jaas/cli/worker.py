"""``jaas worker``: a Dask worker on this node that owns a list of index files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click

__all__ = ["worker"]


def _file_list(files: str) -> list[str]:
    """Comma-separated paths, or ``@LISTFILE`` with one path per line."""
    if files.startswith("@"):
        lines = Path(files[1:]).read_text().splitlines()
        return [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    return [x.strip() for x in files.split(",") if x.strip()]


async def _serve(scheduler: str, plugin: Any, **kwargs: Any) -> None:
    from distributed import Worker

    from jaas.cluster.worker import PLUGIN_NAME

    async with Worker(scheduler, **kwargs) as w:
        answer = await w.plugin_add(plugin, name=PLUGIN_NAME)
        if answer.get("status") != "OK":
            raise click.ClickException(f"cannot register the files: {answer}")
        click.echo(f"worker {w.address} owns {len(plugin.files)} file(s); Ctrl-C to stop")
        await w.finished()


@click.command()
@click.option("--scheduler", required=True, help="Scheduler address, tcp://HOST:8786.")
@click.option("--files", help="Files this worker owns: 'a.parquet,b.parquet' or @LISTFILE.")
@click.option(
    "--query", "source",
    help="Or the files of a dataset: a directory, a glob, or a catalog URL (with --dataset).",
)  # fmt: skip
@click.option("--dataset", "dataset_name", help="Catalog dataset name (with a catalog URL).")
@click.option(
    "--local-storage", is_flag=True,
    help="The files are on this node only: if this worker dies, queries report them lost.",
)  # fmt: skip
@click.option("--nthreads", default=1, show_default=True, help="Threads.")
@click.option("--memory-limit", default="auto", show_default=True, help="e.g. '8GiB'.")
@click.option("--cache-bytes", type=int, default=None, help="Column cache budget in bytes.")
@click.option("--name", default=None, help="Worker name.")
@click.option("--host", default=None, help="Address to listen on.")
def worker(
    scheduler: str,
    files: str | None,
    source: str | None,
    dataset_name: str | None,
    local_storage: bool,
    nthreads: int,
    memory_limit: str,
    cache_bytes: int | None,
    name: str | None,
    host: str | None,
) -> None:
    """Start a worker on this node owning its files (--files or --query).

    Queries run the partitions of these files here, where their columns are cached.
    """
    from jaas.cluster import registry
    from jaas.cluster.worker import JaasWorkerPlugin
    from jaas.engine.session.dataset import open_dataset
    from jaas.errors import ConfigError

    if (files is None) == (source is None):
        raise click.UsageError("give exactly one of --files and --query")
    if files is not None:
        paths = _file_list(files)
        if not paths:
            raise ConfigError(f"--files {files!r} names no file")
        ds = open_dataset(paths)
    else:
        assert source is not None
        ds = open_dataset(source, dataset=dataset_name)
    owned = [(os.path.abspath(f.path), f.t_min, f.t_max) for f in ds.files]
    from distributed import Client

    with Client(scheduler, timeout="30s", set_as_default=False) as c:
        c.run_on_scheduler(registry.snapshot)  # make sure the registry is installed
    plugin = JaasWorkerPlugin(cache_bytes, owned, local_storage)
    kwargs: dict[str, Any] = {"nthreads": nthreads, "memory_limit": memory_limit}
    if name is not None:
        kwargs["name"] = name
    if host is not None:
        kwargs["host"] = host
    try:
        asyncio.run(_serve(scheduler, plugin, **kwargs))
    except KeyboardInterrupt:
        click.echo("worker stopped", err=True)
